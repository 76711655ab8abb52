//! rgpolicy (being written)
