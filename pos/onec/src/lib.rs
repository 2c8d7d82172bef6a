//! chasti as a 1C «эквайринговый терминал»: a Native API add-in (`libchasti_onec.so`) that a
//! 1C configuration attaches with `ПодключитьВнешнююКомпоненту` and drives like a card
//! terminal (Pay, ReturnPayment, CancelPayment, EmergencyReversal, Settlement,
//! TerminalParameters…), each call mapped onto chasti's terminal-shaped till API.
//!
//! Built on the `addin1c` crate: it supplies the Native API's object layout and vtables in
//! plain Rust (no C++ compiler on the build host, Windows builds without MSVC), and keeps up
//! with 1C's platform headers; `native_api_1c` generates the same from derive macros but
//! cannot express the standard's 8-parameter methods or case-insensitive Russian aliases as
//! directly. The unsafe code is here only: the five C exports 1C looks up by name.
//!
//! Layout: `component` (names, variants, errors for 1C) → `driver` (the operations) →
//! `client` (chasti's HTTP API); `xml` the standard's documents, `settings` the driver's
//! settings, `money` amounts, `error` what goes wrong.

#![deny(unsafe_op_in_unsafe_fn)]

mod client;
mod component;
mod driver;
mod error;
mod money;
mod names;
mod settings;
mod xml;

use std::ffi::{c_int, c_long, c_void};

pub use component::INTERFACE_REVISION;
pub use error::DriverError;

/// The one class the library offers (`GetClassNames`: names joined by `|`).
static CLASS_NAMES: [u16; 15] = addin1c::utf16_null!("ChastiTerminal");

/// `GetClassNames`: the classes this library makes, as a NUL-terminated UTF-16 string.
#[no_mangle]
pub extern "C" fn GetClassNames() -> *const u16 {
    CLASS_NAMES.as_ptr()
}

/// `GetClassObject`: makes a terminal object; non-zero is success.
///
/// # Safety
/// `component` must be a valid place for the object's pointer (1C passes one).
#[no_mangle]
pub unsafe extern "C" fn GetClassObject(_name: *const u16, component: *mut *mut c_void) -> c_long {
    if component.is_null() {
        return 0;
    }
    // SAFETY: checked non-null; 1C hands the object back to DestroyObject only.
    unsafe { addin1c::create_component(component, component::Terminal::default()) }
}

/// `DestroyObject`: frees an object `GetClassObject` made; 0 is success.
///
/// # Safety
/// `component` must hold a pointer `GetClassObject` wrote, destroyed once.
#[no_mangle]
pub unsafe extern "C" fn DestroyObject(component: *mut *mut c_void) -> c_long {
    // SAFETY: null pointers are refused; otherwise the caller's contract.
    if component.is_null() || unsafe { (*component).is_null() } {
        return -1;
    }
    unsafe { addin1c::destroy_component(component) }
}

/// `SetPlatformCapabilities`: the platform says what it offers; the driver needs nothing
/// beyond the first version and answers with the capabilities it was built against (3).
#[no_mangle]
pub extern "C" fn SetPlatformCapabilities(_capabilities: c_int) -> c_int {
    3
}

/// `GetAttachType`: the driver works in the client's process or isolated in its own.
#[no_mangle]
pub extern "C" fn GetAttachType() -> addin1c::AttachType {
    addin1c::AttachType::Any
}
