//! walden
