package mamba3rt

/*
#include "mamba3rt.h"
*/
import "C"

// Backend is where a model runs (m3_backend).
type Backend int

// The backends of include/mamba3rt.h.
const (
	BackendAuto         Backend = C.M3_BACKEND_AUTO // the best available: CUDA, then Vulkan, then CPU
	BackendCPU          Backend = C.M3_BACKEND_CPU
	BackendVulkan       Backend = C.M3_BACKEND_VULKAN
	BackendCUDA         Backend = C.M3_BACKEND_CUDA
	BackendCPUReference Backend = C.M3_BACKEND_CPU_REFERENCE // the scalar float32 oracle
)

// String is the library's name: "auto", "cpu", "vulkan", "cuda", "cpu-reference".
func (b Backend) String() string { return C.GoString(C.m3_backend_name(C.m3_backend(b))) }

// Available returns nil if the backend can run on this machine, else an error saying why.
func (b Backend) Available() error {
	return call("backend available", func() C.m3_status { return C.m3_backend_available(C.m3_backend(b)) })
}
