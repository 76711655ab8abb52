//! rgspool (being written)
