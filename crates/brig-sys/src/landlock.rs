//! The one Landlock call brig makes itself: asking the kernel's ABI version (the rulesets are
//! built with the `landlock` crate).

/// The Landlock ABI version the kernel offers (`landlock_create_ruleset(NULL, 0, VERSION)`).
pub fn abi() -> std::io::Result<i32> {
    const LANDLOCK_CREATE_RULESET_VERSION: u32 = 1;
    // SAFETY: with the VERSION flag the kernel reads no attribute struct (NULL, size 0).
    let r = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<u8>(),
            0,
            LANDLOCK_CREATE_RULESET_VERSION,
        )
    };
    crate::check(r).map(|v| v as i32)
}
