//! Calls into the linked library to check that the declared values mean what the library
//! means by them: each status constant has the library's name for it, and so does each
//! backend constant.

use std::ffi::CStr;

use mamba3rt_sys::*;

fn status_name(status: m3_status) -> String {
    unsafe { CStr::from_ptr(m3_status_name(status)) }.to_str().unwrap().to_string()
}

fn backend_name(backend: m3_backend) -> String {
    unsafe { CStr::from_ptr(m3_backend_name(backend)) }.to_str().unwrap().to_string()
}

#[test]
fn abi_version_matches() {
    assert_eq!(unsafe { m3_abi_version() }, M3_ABI_VERSION);
}

#[test]
fn status_constants_have_the_library_names() {
    let expected = [
        (M3_OK, "M3_OK"),
        (M3_ERR_INVALID_ARGUMENT, "M3_ERR_INVALID_ARGUMENT"),
        (M3_ERR_IO, "M3_ERR_IO"),
        (M3_ERR_FORMAT, "M3_ERR_FORMAT"),
        (M3_ERR_UNSUPPORTED, "M3_ERR_UNSUPPORTED"),
        (M3_ERR_OUT_OF_MEMORY, "M3_ERR_OUT_OF_MEMORY"),
        (M3_ERR_BACKEND_UNAVAILABLE, "M3_ERR_BACKEND_UNAVAILABLE"),
        (M3_ERR_BUFFER_TOO_SMALL, "M3_ERR_BUFFER_TOO_SMALL"),
        (M3_ERR_MODEL_MISMATCH, "M3_ERR_MODEL_MISMATCH"),
        (M3_ERR_SESSION_BUSY, "M3_ERR_SESSION_BUSY"),
        (M3_ERR_INTERNAL, "M3_ERR_INTERNAL"),
        (M3_ERR_LIMIT_EXCEEDED, "M3_ERR_LIMIT_EXCEEDED"),
        (M3_ERR_TIMEOUT, "M3_ERR_TIMEOUT"),
        (M3_ERR_STATE_LOST, "M3_ERR_STATE_LOST"),
    ];
    for (value, name) in expected {
        assert_eq!(status_name(value), name, "value {value}");
    }
}

#[test]
fn backend_constants_have_the_library_names() {
    let expected = [
        (M3_BACKEND_AUTO, "auto"),
        (M3_BACKEND_CPU, "cpu"),
        (M3_BACKEND_VULKAN, "vulkan"),
        (M3_BACKEND_CUDA, "cuda"),
        (M3_BACKEND_CPU_REFERENCE, "cpu-reference"),
    ];
    for (value, name) in expected {
        assert_eq!(backend_name(value), name, "value {value}");
    }
}

#[test]
fn a_failed_call_sets_the_last_error() {
    let status = unsafe { m3_model_params_set_threads(std::ptr::null_mut(), 1) };
    assert_eq!(status, M3_ERR_INVALID_ARGUMENT);
    let message = unsafe { CStr::from_ptr(m3_last_error()) }.to_str().unwrap().to_string();
    assert!(message.contains("params"), "{message}");
    assert_eq!(unsafe { m3_live_handles() }, 0);
}
