//! rgauth (being written)
