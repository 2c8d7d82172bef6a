//! The 1C platform's side of the Native API, in Rust, for testing the add-in without 1C: it
//! loads the library with libloading and drives an object the way the platform does
//! (GetClassNames, SetPlatformCapabilities, GetClassObject, setMemManager, Init with a
//! connection it provides, GetInfo, RegisterExtensionAs, SetLocale, then Find*/Get*/Call*,
//! Done, DestroyObject). Written from 1C's public headers as the `addin1c-test` crate ships
//! them (`types.h`, `ComponentBase.h`, `AddInDefBase.h`, `IMemoryManager.h`), for Linux
//! x86_64: each interface's vtable starts with two destructor slots (Itanium C++ ABI), C
//! `long` is 64 bits, strings are NUL-terminated UTF-16. Not checked against 1C itself.

use std::alloc::Layout;
use std::collections::HashMap;
use std::ffi::{c_int, c_long, c_ulong, c_void};
use std::sync::Mutex;

/// `tVariant`: a 56-byte union (its largest member is glibc's `struct tm`), `cbElements`,
/// `vt`.
#[repr(C)]
pub struct TVariant {
    value: [u64; 7],
    elements: u32,
    vt: u16,
}

const VT_EMPTY: u16 = 0;
const VT_I4: u16 = 3;
const VT_R8: u16 = 5;
const VT_BOOL: u16 = 11;
const VT_PWSTR: u16 = 22;

/// A value passed to or read from the add-in.
#[derive(Debug, Clone, PartialEq)]
pub enum V {
    Empty,
    Str(String),
    I4(i32),
    R8(f64),
    Bool(bool),
}

impl V {
    pub fn s(text: &str) -> V {
        V::Str(text.to_string())
    }

    pub fn text(&self) -> &str {
        match self {
            V::Str(s) => s,
            _ => "",
        }
    }
}

// ---- IMemoryManager: what the add-in allocates its strings with ----

#[repr(C)]
struct MemoryVTable {
    dtor: usize,
    dtor2: usize,
    alloc: unsafe extern "C" fn(*mut Memory, *mut *mut c_void, c_ulong) -> bool,
    free: unsafe extern "C" fn(*mut Memory, *mut *mut c_void),
}

/// The memory manager: every block it hands out is tracked, so a test can see that what the
/// add-in returned was all freed and that it never freed what was not its to free.
#[repr(C)]
pub struct Memory {
    vtable: &'static MemoryVTable,
    live: Mutex<HashMap<usize, Layout>>,
    bad_frees: Mutex<usize>,
}

unsafe extern "C" fn alloc_memory(m: *mut Memory, out: *mut *mut c_void, bytes: c_ulong) -> bool {
    let m = unsafe { &*m };
    let Ok(layout) = Layout::from_size_align((bytes as usize).max(1), 8) else {
        return false;
    };
    let p = unsafe { std::alloc::alloc_zeroed(layout) };
    if p.is_null() {
        return false;
    }
    m.live.lock().unwrap().insert(p as usize, layout);
    unsafe { *out = p.cast() };
    true
}

unsafe extern "C" fn free_memory(m: *mut Memory, p: *mut *mut c_void) {
    let m = unsafe { &*m };
    let ptr = unsafe { *p };
    if ptr.is_null() {
        return;
    }
    match m.live.lock().unwrap().remove(&(ptr as usize)) {
        Some(layout) => unsafe { std::alloc::dealloc(ptr.cast(), layout) },
        None => *m.bad_frees.lock().unwrap() += 1,
    }
    unsafe { *p = std::ptr::null_mut() };
}

static MEMORY_VTABLE: MemoryVTable = MemoryVTable {
    dtor: 0,
    dtor2: 0,
    alloc: alloc_memory,
    free: free_memory,
};

impl Memory {
    fn new() -> Box<Memory> {
        Box::new(Memory {
            vtable: &MEMORY_VTABLE,
            live: Mutex::new(HashMap::new()),
            bad_frees: Mutex::new(0),
        })
    }

    fn alloc_str(&mut self, text: &str) -> (*mut u16, u32) {
        let units: Vec<u16> = text.encode_utf16().chain([0]).collect();
        let mut p = std::ptr::null_mut();
        assert!(unsafe { alloc_memory(self, &mut p, (units.len() * 2) as c_ulong) });
        unsafe { std::ptr::copy_nonoverlapping(units.as_ptr(), p.cast(), units.len()) };
        (p.cast(), (units.len() - 1) as u32)
    }

    fn free(&mut self, p: *mut c_void) {
        let mut p = p;
        unsafe { free_memory(self, &mut p) };
    }

    /// Blocks handed out and not freed.
    pub fn live(&self) -> usize {
        self.live.lock().unwrap().len()
    }

    pub fn bad_frees(&self) -> usize {
        *self.bad_frees.lock().unwrap()
    }
}

// ---- IAddInDefBase: the connection the platform passes to Init ----

#[repr(C)]
struct ConnectionVTable {
    dtor: usize,
    dtor2: usize,
    add_error: unsafe extern "C" fn(*mut Connection, u16, *const u16, *const u16, c_long) -> bool,
    read: unsafe extern "C" fn(
        *mut Connection,
        *mut u16,
        *mut TVariant,
        c_long,
        *mut *mut u16,
    ) -> bool,
    write: unsafe extern "C" fn(*mut Connection, *mut u16, *mut TVariant) -> bool,
    register_profile_as: unsafe extern "C" fn(*mut Connection, *mut u16) -> bool,
    set_event_buffer_depth: unsafe extern "C" fn(*mut Connection, c_long) -> bool,
    get_event_buffer_depth: unsafe extern "C" fn(*mut Connection) -> c_long,
    external_event: unsafe extern "C" fn(*mut Connection, *mut u16, *mut u16, *mut u16) -> bool,
    clean_event_buffer: unsafe extern "C" fn(*mut Connection),
    set_status_line: unsafe extern "C" fn(*mut Connection, *mut u16) -> bool,
    reset_status_line: unsafe extern "C" fn(*mut Connection),
}

/// The connection: records what the add-in reports through it.
#[repr(C)]
pub struct Connection {
    vtable: &'static ConnectionVTable,
    pub reported: Mutex<Vec<String>>,
}

/// A NUL-terminated UTF-16 string the add-in passed; empty for null.
fn read_wstr(p: *const u16) -> String {
    if p.is_null() {
        return String::new();
    }
    let mut n = 0;
    while unsafe { *p.add(n) } != 0 {
        n += 1;
    }
    String::from_utf16_lossy(unsafe { std::slice::from_raw_parts(p, n) })
}

unsafe extern "C" fn add_error(
    c: *mut Connection,
    code: u16,
    source: *const u16,
    descr: *const u16,
    _: c_long,
) -> bool {
    let c = unsafe { &*c };
    c.reported.lock().unwrap().push(format!(
        "AddError {code} {}: {}",
        read_wstr(source),
        read_wstr(descr)
    ));
    true
}
unsafe extern "C" fn read(
    _: *mut Connection,
    _: *mut u16,
    _: *mut TVariant,
    _: c_long,
    _: *mut *mut u16,
) -> bool {
    false
}
unsafe extern "C" fn write(_: *mut Connection, _: *mut u16, _: *mut TVariant) -> bool {
    false
}
unsafe extern "C" fn register_profile_as(_: *mut Connection, _: *mut u16) -> bool {
    true
}
unsafe extern "C" fn set_event_buffer_depth(_: *mut Connection, _: c_long) -> bool {
    true
}
unsafe extern "C" fn get_event_buffer_depth(_: *mut Connection) -> c_long {
    1
}
unsafe extern "C" fn external_event(
    c: *mut Connection,
    source: *mut u16,
    message: *mut u16,
    data: *mut u16,
) -> bool {
    let c = unsafe { &*c };
    c.reported.lock().unwrap().push(format!(
        "ExternalEvent {} {} {}",
        read_wstr(source),
        read_wstr(message),
        read_wstr(data)
    ));
    true
}
unsafe extern "C" fn clean_event_buffer(_: *mut Connection) {}
unsafe extern "C" fn set_status_line(_: *mut Connection, _: *mut u16) -> bool {
    true
}
unsafe extern "C" fn reset_status_line(_: *mut Connection) {}

static CONNECTION_VTABLE: ConnectionVTable = ConnectionVTable {
    dtor: 0,
    dtor2: 0,
    add_error,
    read,
    write,
    register_profile_as,
    set_event_buffer_depth,
    get_event_buffer_depth,
    external_event,
    clean_event_buffer,
    set_status_line,
    reset_status_line,
};

// ---- The library and its objects ----

type GetClassNames = unsafe extern "C" fn() -> *const u16;
type GetClassObject = unsafe extern "C" fn(*const u16, *mut *mut c_void) -> c_long;
type DestroyObject = unsafe extern "C" fn(*mut *mut c_void) -> c_long;
type SetPlatformCapabilities = unsafe extern "C" fn(c_int) -> c_int;
type GetAttachType = unsafe extern "C" fn() -> c_int;

/// The add-in's library, loaded.
pub struct Library {
    lib: libloading::Library,
}

/// Where cargo put the add-in's `.so` for this test run (beside the test binary's folder).
pub fn library_path() -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap();
    let deps = exe.parent().unwrap();
    [deps, deps.parent().unwrap()]
        .iter()
        .map(|d| d.join("libchasti_onec.so"))
        .find(|p| p.exists())
        .unwrap_or_else(|| panic!("libchasti_onec.so is not beside {}", exe.display()))
}

impl Library {
    pub fn load() -> Library {
        let lib = unsafe { libloading::Library::new(library_path()) }.expect("the add-in loads");
        Library { lib }
    }

    fn export<T: Copy>(&self, name: &[u8]) -> T {
        *unsafe { self.lib.get::<T>(name) }
            .unwrap_or_else(|e| panic!("{} is not exported: {e}", String::from_utf8_lossy(name)))
    }

    /// `GetClassNames`, split at `|`.
    pub fn class_names(&self) -> Vec<String> {
        let names = unsafe { self.export::<GetClassNames>(b"GetClassNames")() };
        read_wstr(names).split('|').map(str::to_string).collect()
    }

    pub fn attach_type(&self) -> i32 {
        unsafe { self.export::<GetAttachType>(b"GetAttachType")() }
    }

    /// An object of `class`, set up as the platform sets one up.
    pub fn create(&self, class: &str) -> Object<'_> {
        let caps = unsafe { self.export::<SetPlatformCapabilities>(b"SetPlatformCapabilities")(3) };
        assert_eq!(caps, 3);
        let name: Vec<u16> = class.encode_utf16().chain([0]).collect();
        let mut obj = std::ptr::null_mut();
        let made =
            unsafe { self.export::<GetClassObject>(b"GetClassObject")(name.as_ptr(), &mut obj) };
        assert!(made != 0 && !obj.is_null(), "GetClassObject({class})");
        let mut object = Object {
            library: self,
            obj,
            memory: Memory::new(),
            connection: Box::new(Connection {
                vtable: &CONNECTION_VTABLE,
                reported: Mutex::new(Vec::new()),
            }),
            extension: String::new(),
        };
        let memory: *mut Memory = &mut *object.memory;
        let connection: *mut Connection = &mut *object.connection;
        unsafe {
            assert!(object
                .slot::<unsafe extern "C" fn(*mut c_void, *mut c_void) -> bool>(
                    0, 3
                )(object.this(0), memory.cast()));
            assert!(object
                .slot::<unsafe extern "C" fn(*mut c_void, *mut c_void) -> bool>(
                    0, 2
                )(object.this(0), connection.cast()));
            let info =
                object.slot::<unsafe extern "C" fn(*mut c_void) -> c_long>(0, 4)(object.this(0));
            assert!(info >= 2000, "GetInfo {info}");
            let mut ext: *mut u16 = std::ptr::null_mut();
            assert!(object
                .slot::<unsafe extern "C" fn(*mut c_void, *mut *mut u16) -> bool>(
                    1, 2
                )(object.this(1), &mut ext));
            object.extension = read_wstr(ext);
            object.memory.free(ext.cast());
            let locale: Vec<u16> = "ru_RU".encode_utf16().chain([0]).collect();
            object.slot::<unsafe extern "C" fn(*mut c_void, *const u16)>(2, 2)(
                object.this(2),
                locale.as_ptr(),
            );
            let language: Vec<u16> = "ru".encode_utf16().chain([0]).collect();
            object.slot::<unsafe extern "C" fn(*mut c_void, *const u16)>(3, 2)(
                object.this(3),
                language.as_ptr(),
            );
        }
        object
    }
}

/// One add-in object, called through its vtables.
pub struct Object<'l> {
    library: &'l Library,
    obj: *mut c_void,
    memory: Box<Memory>,
    connection: Box<Connection>,
    /// What RegisterExtensionAs named it.
    pub extension: String,
}

/// What a function call gave: whether the call itself worked (false: 1C raises an
/// exception), the function's value, and every parameter after the call.
#[derive(Debug)]
pub struct Called {
    pub ok: bool,
    pub value: V,
    pub params: Vec<V>,
}

impl Called {
    /// The BOOL a driver method returns.
    pub fn yes(&self) -> bool {
        self.ok && self.value == V::Bool(true)
    }
}

impl Object<'_> {
    /// `this` for interface `k` (0 init/done, 1 language extender, 2 locale, 3 user language).
    fn this(&self, k: usize) -> *mut c_void {
        unsafe { self.obj.cast::<u8>().add(8 * k).cast() }
    }

    /// Slot `index` of interface `k`'s vtable (slots 0 and 1 are the destructors).
    unsafe fn slot<F: Copy>(&self, k: usize, index: usize) -> F {
        assert!(index >= 2, "never the destructors");
        let vtable = unsafe { *(self.this(k) as *const *const usize) };
        let f = unsafe { *vtable.add(index) };
        assert_ne!(f, 0, "slot {index} of interface {k} is empty");
        unsafe { std::mem::transmute_copy::<usize, F>(&f) }
    }

    fn wide(name: &str) -> Vec<u16> {
        name.encode_utf16().chain([0]).collect()
    }

    pub fn methods(&self) -> i64 {
        unsafe { self.slot::<unsafe extern "C" fn(*mut c_void) -> c_long>(1, 10)(self.this(1)) }
    }

    pub fn find_method(&self, name: &str) -> i64 {
        let w = Self::wide(name);
        unsafe {
            self.slot::<unsafe extern "C" fn(*mut c_void, *const u16) -> c_long>(1, 11)(
                self.this(1),
                w.as_ptr(),
            )
        }
    }

    /// GetMethodName(num, alias): 0 English, 1 Russian.
    pub fn method_name(&mut self, num: i64, alias: i64) -> String {
        let p = unsafe {
            self.slot::<unsafe extern "C" fn(*mut c_void, c_long, c_long) -> *const u16>(1, 12)(
                self.this(1),
                num,
                alias,
            )
        };
        let name = read_wstr(p);
        self.memory.free(p as *mut c_void);
        name
    }

    pub fn params_of(&self, num: i64) -> i64 {
        unsafe {
            self.slot::<unsafe extern "C" fn(*mut c_void, c_long) -> c_long>(1, 13)(
                self.this(1),
                num,
            )
        }
    }

    fn variant_of(&mut self, v: &V) -> TVariant {
        let mut t = TVariant {
            value: [0; 7],
            elements: 0,
            vt: VT_EMPTY,
        };
        let raw = t.value.as_mut_ptr().cast::<u8>();
        match v {
            V::Empty => {}
            V::I4(n) => unsafe {
                t.vt = VT_I4;
                *raw.cast::<i32>() = *n;
            },
            V::R8(n) => unsafe {
                t.vt = VT_R8;
                *raw.cast::<f64>() = *n;
            },
            V::Bool(b) => unsafe {
                t.vt = VT_BOOL;
                *raw.cast::<bool>() = *b;
            },
            V::Str(s) => {
                let (p, len) = self.memory.alloc_str(s);
                t.vt = VT_PWSTR;
                unsafe {
                    *raw.cast::<*mut u16>() = p;
                    *raw.add(8).cast::<u32>() = len;
                }
            }
        }
        t
    }

    /// Reads a variant the add-in may have written, and frees its string.
    fn take(&mut self, t: &mut TVariant) -> V {
        let raw = t.value.as_mut_ptr().cast::<u8>();
        let v = match t.vt {
            VT_EMPTY => V::Empty,
            VT_I4 => V::I4(unsafe { *raw.cast::<i32>() }),
            VT_R8 => V::R8(unsafe { *raw.cast::<f64>() }),
            VT_BOOL => V::Bool(unsafe { *raw.cast::<bool>() }),
            VT_PWSTR => {
                let p = unsafe { *raw.cast::<*mut u16>() };
                let len = unsafe { *raw.add(8).cast::<u32>() } as usize;
                let s = String::from_utf16_lossy(unsafe { std::slice::from_raw_parts(p, len) });
                self.memory.free(p.cast());
                V::Str(s)
            }
            other => panic!("the add-in wrote a variant of type {other}"),
        };
        t.vt = VT_EMPTY;
        v
    }

    /// CallAsFunc of method `name` (found with FindMethod, as 1C finds it), with exactly
    /// GetNParams parameters as 1C passes them.
    pub fn call(&mut self, name: &str, args: &[V]) -> Called {
        let num = self.find_method(name);
        assert!(num >= 0, "FindMethod({name}) found nothing");
        assert_eq!(self.params_of(num), args.len() as i64, "GetNParams({name})");
        let has_ret = unsafe {
            self.slot::<unsafe extern "C" fn(*mut c_void, c_long) -> bool>(1, 15)(self.this(1), num)
        };
        assert!(has_ret, "HasRetVal({name})");
        let mut params: Vec<TVariant> = args.iter().map(|a| self.variant_of(a)).collect();
        let mut ret = self.variant_of(&V::Empty);
        let ok = unsafe {
            self.slot::<unsafe extern "C" fn(
                *mut c_void,
                c_long,
                *mut TVariant,
                *mut TVariant,
                c_long,
            ) -> bool>(1, 17)(
                self.this(1),
                num,
                &mut ret,
                params.as_mut_ptr(),
                params.len() as c_long,
            )
        };
        let value = self.take(&mut ret);
        let params = params.iter_mut().map(|p| self.take(p)).collect();
        Called { ok, value, params }
    }

    /// GetLastError: its code and the text 1C shows.
    pub fn last_error(&mut self) -> (i32, String) {
        let c = self.call("GetLastError", &[V::Empty]);
        let code = match c.value {
            V::I4(n) => n,
            other => panic!("GetLastError returned {other:?}"),
        };
        (code, c.params[0].text().to_string())
    }

    fn find_prop(&self, name: &str) -> i64 {
        let w = Self::wide(name);
        unsafe {
            self.slot::<unsafe extern "C" fn(*mut c_void, *const u16) -> c_long>(1, 4)(
                self.this(1),
                w.as_ptr(),
            )
        }
    }

    /// SetPropVal, as `Объект.Свойство = Значение`.
    pub fn set_prop(&mut self, name: &str, value: V) -> bool {
        let num = self.find_prop(name);
        assert!(num >= 0, "FindProp({name})");
        let writable = unsafe {
            self.slot::<unsafe extern "C" fn(*mut c_void, c_long) -> bool>(1, 9)(self.this(1), num)
        };
        if !writable {
            return false;
        }
        let mut t = self.variant_of(&value);
        let ok = unsafe {
            self.slot::<unsafe extern "C" fn(*mut c_void, c_long, *mut TVariant) -> bool>(1, 7)(
                self.this(1),
                num,
                &mut t,
            )
        };
        self.take(&mut t);
        ok
    }

    pub fn get_prop(&mut self, name: &str) -> V {
        let num = self.find_prop(name);
        assert!(num >= 0, "FindProp({name})");
        let mut t = self.variant_of(&V::Empty);
        let ok = unsafe {
            self.slot::<unsafe extern "C" fn(*mut c_void, c_long, *mut TVariant) -> bool>(1, 6)(
                self.this(1),
                num,
                &mut t,
            )
        };
        assert!(ok, "GetPropVal({name})");
        self.take(&mut t)
    }

    pub fn reported(&self) -> Vec<String> {
        self.connection.reported.lock().unwrap().clone()
    }

    /// Done and DestroyObject, as the platform ends an object; what the memory manager saw.
    pub fn destroy(mut self) -> (usize, usize) {
        unsafe {
            self.slot::<unsafe extern "C" fn(*mut c_void)>(0, 5)(self.this(0));
            let destroyed = self.library.export::<DestroyObject>(b"DestroyObject")(&mut self.obj);
            assert_eq!(destroyed, 0, "DestroyObject");
        }
        assert!(self.obj.is_null(), "DestroyObject clears the pointer");
        (self.memory.live(), self.memory.bad_frees())
    }
}

#[test]
fn a_variant_is_64_bytes_as_in_1cs_headers() {
    assert_eq!(std::mem::size_of::<TVariant>(), 64);
    assert_eq!(std::mem::align_of::<TVariant>(), 8);
}
