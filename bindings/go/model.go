package mamba3rt

/*
#include <stdlib.h>
#include "mamba3rt.h"
*/
import "C"

import (
	"runtime"
	"sync"
	"unsafe"
)

// InfoKey names an integer property of a model (m3_model_info_key).
type InfoKey int

// The model properties of include/mamba3rt.h.
const (
	InfoNLayer         InfoKey = C.M3_INFO_N_LAYER
	InfoDModel         InfoKey = C.M3_INFO_D_MODEL
	InfoVocabSize      InfoKey = C.M3_INFO_VOCAB_SIZE   // token ids are 0 .. vocab_size-1
	InfoVocabPadded    InfoKey = C.M3_INFO_VOCAB_PADDED // columns of every logits row
	InfoDInner         InfoKey = C.M3_INFO_D_INNER
	InfoNHeads         InfoKey = C.M3_INFO_N_HEADS
	InfoHeadDim        InfoKey = C.M3_INFO_HEADDIM
	InfoDState         InfoKey = C.M3_INFO_D_STATE
	InfoNGroups        InfoKey = C.M3_INFO_N_GROUPS
	InfoMIMORank       InfoKey = C.M3_INFO_MIMO_RANK
	InfoIsMIMO         InfoKey = C.M3_INFO_IS_MIMO
	InfoNRopeAngles    InfoKey = C.M3_INFO_N_ROPE_ANGLES
	InfoIsOutprojNorm  InfoKey = C.M3_INFO_IS_OUTPROJ_NORM
	InfoMLPHidden      InfoKey = C.M3_INFO_MLP_HIDDEN
	InfoTieEmbeddings  InfoKey = C.M3_INFO_TIE_EMBEDDINGS
	InfoAActivation    InfoKey = C.M3_INFO_A_ACTIVATION
	InfoBackend        InfoKey = C.M3_INFO_BACKEND
	InfoStateBytes     InfoKey = C.M3_INFO_STATE_BYTES
	InfoStateBlobBytes InfoKey = C.M3_INFO_STATE_BLOB_BYTES // size of a Snapshot
	InfoNParams        InfoKey = C.M3_INFO_N_PARAMS
	InfoWeightBytes    InfoKey = C.M3_INFO_WEIGHT_BYTES
	InfoThreads        InfoKey = C.M3_INFO_THREADS
	InfoWeightType     InfoKey = C.M3_INFO_WEIGHT_TYPE   // a WeightType
	InfoLiveSessions   InfoKey = C.M3_INFO_LIVE_SESSIONS // sessions alive now (see WithMaxSessions)
	InfoMaxSessions    InfoKey = C.M3_INFO_MAX_SESSIONS  // the WithMaxSessions limit; 0 = none
)

// WeightType is how the block matrices are stored (m3_weight_type).
type WeightType int

// The weight types of include/mamba3rt.h.
const (
	WeightF32  WeightType = C.M3_WEIGHT_F32
	WeightF16  WeightType = C.M3_WEIGHT_F16
	WeightBF16 WeightType = C.M3_WEIGHT_BF16
	WeightInt8 WeightType = C.M3_WEIGHT_INT8 // int8 with an f16 scale per 32 weights
	WeightQ4   WeightType = C.M3_WEIGHT_Q4   // 4-bit with an f16 scale per 32 weights
)

// Model is a loaded model (m3_model). It is safe for concurrent use by multiple goroutines,
// as the C API allows. Sessions keep the weights alive, so a model may be closed before its
// sessions; its Tokenizer may not be used after Close.
type Model struct {
	mu  sync.RWMutex // Close takes it for writing, every other method for reading
	ptr *C.m3_model
}

// LoadModel loads a model directory: config.json plus model.safetensors or
// pytorch_model.bin, and usually tokenizer.json.
func LoadModel(dir string, options ...ModelOption) (*Model, error) {
	if err := checkABI(); err != nil {
		return nil, err
	}
	var params *C.m3_model_params
	if len(options) > 0 {
		if err := call("model params", func() C.m3_status { return C.m3_model_params_create(&params) }); err != nil {
			return nil, err
		}
		defer C.m3_model_params_destroy(params)
		for _, o := range options {
			if err := o.apply(params); err != nil {
				return nil, err
			}
		}
	}
	cdir := C.CString(dir)
	defer C.free(unsafe.Pointer(cdir))
	m := &Model{}
	if err := call("load "+dir, func() C.m3_status { return C.m3_model_load(cdir, params, &m.ptr) }); err != nil {
		return nil, err
	}
	runtime.SetFinalizer(m, (*Model).Close)
	return m, nil
}

// with runs f on the live handle under the read lock.
func (m *Model) with(op string, f func(p *C.m3_model) C.m3_status) error {
	if m == nil {
		return closedError(op, "nil model")
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.ptr == nil {
		return closedError(op, "model")
	}
	err := call(op, func() C.m3_status { return f(m.ptr) })
	runtime.KeepAlive(m)
	return err
}

// Close frees the model handle. Calling it again does nothing.
func (m *Model) Close() error {
	if m == nil {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.ptr != nil {
		C.m3_model_free(m.ptr)
		m.ptr = nil
		runtime.SetFinalizer(m, nil)
	}
	return nil
}

// Info returns one integer property.
func (m *Model) Info(key InfoKey) (int64, error) {
	var v C.int64_t
	err := m.with("model info", func(p *C.m3_model) C.m3_status {
		return C.m3_model_info(p, C.m3_model_info_key(key), &v)
	})
	return int64(v), err
}

// VocabSize is the number of token ids.
func (m *Model) VocabSize() (int, error) {
	v, err := m.Info(InfoVocabSize)
	return int(v), err
}

// DeviceName is the name of the device the model runs on, e.g. "NVIDIA H100 80GB HBM3" or
// "llvmpipe (LLVM 15.0.6, 256 bits)"; "CPU" for the CPU backends.
func (m *Model) DeviceName() (string, error) {
	b, err := twoCallBytes(64, func(buf *C.char, capacity C.size_t, n *C.size_t) error {
		return m.with("device name", func(p *C.m3_model) C.m3_status {
			return C.m3_model_device_name(p, buf, capacity, n)
		})
	})
	return string(b), err
}

// WeightType is how the block matrices are stored.
func (m *Model) WeightType() (WeightType, error) {
	v, err := m.Info(InfoWeightType)
	return WeightType(v), err
}

// LiveSessions is the number of sessions alive now on the model, counting forks, an engine's
// streams and sessions that outlive the Model.
func (m *Model) LiveSessions() (int, error) {
	v, err := m.Info(InfoLiveSessions)
	return int(v), err
}

// MaxSessions is the most sessions that may be alive at once (WithMaxSessions); 0 means no limit.
func (m *Model) MaxSessions() (int, error) {
	v, err := m.Info(InfoMaxSessions)
	return int(v), err
}

// Tokenizer returns the model directory's tokenizer (its tokenizer.json), which belongs to
// the model: it fails with ErrClosed once the model is closed, and its Close does nothing.
func (m *Model) Tokenizer() (*Tokenizer, error) {
	var t *C.m3_tokenizer
	err := m.with("model tokenizer", func(p *C.m3_model) C.m3_status { return C.m3_model_tokenizer(p, &t) })
	if err != nil {
		return nil, err
	}
	return &Tokenizer{ptr: t, model: m}, nil
}
