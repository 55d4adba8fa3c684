package mamba3rt

/*
#include "mamba3rt.h"
*/
import "C"

// AActivation is how the decay rate A is computed (m3_a_activation).
type AActivation int

// The A activations of include/mamba3rt.h.
const (
	AActivationFromConfig AActivation = C.M3_A_ACTIVATION_FROM_CONFIG
	AActivationHeavyTail  AActivation = C.M3_A_ACTIVATION_HEAVY_TAIL
	AActivationSoftplus   AActivation = C.M3_A_ACTIVATION_SOFTPLUS
)

// ModelOption is a load option for LoadModel.
type ModelOption struct {
	name  string
	apply func(p *C.m3_model_params) C.m3_status
}

// WithBackend selects the backend (default BackendAuto).
func WithBackend(b Backend) ModelOption {
	return ModelOption{"backend", func(p *C.m3_model_params) C.m3_status {
		return C.m3_model_params_set_backend(p, C.m3_backend(b))
	}}
}

// WithThreads sets the CPU worker threads (the calling thread counts as one); 0 means one
// per core, or $MAMBA3RT_THREADS when set.
func WithThreads(n int) ModelOption {
	return ModelOption{"threads", func(p *C.m3_model_params) C.m3_status {
		if n < 0 || n > 1<<30 {
			n = -1 // out of range: let the library reject it with its message
		}
		return C.m3_model_params_set_threads(p, C.int32_t(n))
	}}
}

// WithAActivation overrides how the decay rate A is computed.
func WithAActivation(a AActivation) ModelOption {
	return ModelOption{"A activation", func(p *C.m3_model_params) C.m3_status {
		return C.m3_model_params_set_a_activation(p, C.m3_a_activation(a))
	}}
}
