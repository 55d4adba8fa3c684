package mamba3rt

/*
#include <stdlib.h>
#include "mamba3rt.h"
*/
import "C"

import (
	"strings"
	"unsafe"
)

// AActivation is how the decay rate A is computed (m3_a_activation).
type AActivation int

// The A activations of include/mamba3rt.h.
const (
	AActivationFromConfig AActivation = C.M3_A_ACTIVATION_FROM_CONFIG
	AActivationHeavyTail  AActivation = C.M3_A_ACTIVATION_HEAVY_TAIL
	AActivationSoftplus   AActivation = C.M3_A_ACTIVATION_SOFTPLUS
)

// ModelOption is a load option for LoadModel (one setter of m3_model_params).
type ModelOption struct {
	apply func(p *C.m3_model_params) error
}

// modelOption wraps one C setter.
func modelOption(name string, set func(p *C.m3_model_params) C.m3_status) ModelOption {
	return ModelOption{func(p *C.m3_model_params) error {
		return call(name, func() C.m3_status { return set(p) })
	}}
}

// WithBackend selects the backend (default BackendAuto).
func WithBackend(b Backend) ModelOption {
	return modelOption("backend", func(p *C.m3_model_params) C.m3_status {
		return C.m3_model_params_set_backend(p, C.m3_backend(b))
	})
}

// WithDevice selects the device a GPU backend runs on: a decimal index in the order the
// backend lists them, or a case-insensitive part of the device's name (e.g. "llvmpipe",
// "NVIDIA"; the CUDA backend takes indices only). "" is the backend's choice; the CPU backends
// ignore it. A selector that matches no device makes LoadModel fail with
// StatusBackendUnavailable; Model.DeviceName tells which device was picked. At most 255
// bytes; a string with a NUL byte is rejected.
func WithDevice(device string) ModelOption {
	return ModelOption{func(p *C.m3_model_params) error {
		if strings.IndexByte(device, 0) >= 0 {
			return invalidArgument("device", "device contains a NUL byte")
		}
		cdevice := C.CString(device)
		defer C.free(unsafe.Pointer(cdevice))
		return call("device", func() C.m3_status { return C.m3_model_params_set_device(p, cdevice) })
	}}
}

// WithThreads sets the CPU worker threads (the calling thread counts as one); 0 means one
// per core, or $MAMBA3RT_THREADS when set.
func WithThreads(n int) ModelOption {
	return modelOption("threads", func(p *C.m3_model_params) C.m3_status {
		if n < 0 || n > 1<<30 {
			n = -1 // out of range: let the library reject it with its message
		}
		return C.m3_model_params_set_threads(p, C.int32_t(n))
	})
}

// WithMaxTensorBytes sets the largest tensor a checkpoint may hold, in bytes as stored: a
// larger one makes LoadModel fail with StatusLimitExceeded before any weight is converted or
// uploaded. The default is 16 GiB; 0 means no limit. A limit for processes that load models
// they do not trust.
func WithMaxTensorBytes(n int64) ModelOption {
	return modelOption("max tensor bytes", func(p *C.m3_model_params) C.m3_status {
		return C.m3_model_params_set_max_tensor_bytes(p, C.int64_t(n))
	})
}

// WithMaxSessions sets the most sessions that may be alive at once on the loaded model,
// counting forks, an engine's streams and sessions that outlive the Model: NewSession, Fork and
// Engine.Submit beyond it fail with StatusLimitExceeded. The default is 0, no limit;
// Model.LiveSessions tells how many are alive.
func WithMaxSessions(n int) ModelOption {
	return modelOption("max sessions", func(p *C.m3_model_params) C.m3_status {
		if n < 0 || n > 1<<31-1 {
			n = -1 // out of range: let the library reject it with its message
		}
		return C.m3_model_params_set_max_sessions(p, C.int32_t(n))
	})
}

// WithAActivation overrides how the decay rate A is computed.
func WithAActivation(a AActivation) ModelOption {
	return modelOption("A activation", func(p *C.m3_model_params) C.m3_status {
		return C.m3_model_params_set_a_activation(p, C.m3_a_activation(a))
	})
}
