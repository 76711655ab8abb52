//! rgsmtp (being written)
