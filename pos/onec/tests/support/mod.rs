#![allow(dead_code)]
//! What the add-in's tests share: the test host and a running chasti.

pub mod native_api;
pub mod shop;
