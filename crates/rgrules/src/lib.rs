//! rgrules (being written)
