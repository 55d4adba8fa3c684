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

// GenOption is a sampling or stopping option for Session.NewGeneration (one setter of
// m3_gen_params). Defaults: temperature 1, no top-k/top-p/min-p, no penalties (repeat
// window 64), seed 0, at most 256 tokens per turn, stop at the model's end-of-sequence
// tokens. Invalid values make NewGeneration fail with the library's message.
type GenOption struct {
	apply func(p *C.m3_gen_params) error
}

// genOption wraps one C setter.
func genOption(name string, set func(p *C.m3_gen_params) C.m3_status) GenOption {
	return GenOption{func(p *C.m3_gen_params) error {
		return call(name, func() C.m3_status { return set(p) })
	}}
}

// Greedy always picks the most likely token.
func Greedy() GenOption {
	return genOption("greedy", func(p *C.m3_gen_params) C.m3_status { return C.m3_gen_params_set_greedy(p) })
}

// Temperature sets the softmax temperature; <= 0 means greedy.
func Temperature(t float32) GenOption {
	return genOption("temperature", func(p *C.m3_gen_params) C.m3_status {
		return C.m3_gen_params_set_temperature(p, C.float(t))
	})
}

// TopK keeps the k most likely tokens (0 = off).
func TopK(k int32) GenOption {
	return genOption("top_k", func(p *C.m3_gen_params) C.m3_status { return C.m3_gen_params_set_top_k(p, C.int32_t(k)) })
}

// TopP is nucleus sampling, in (0, 1] (1 = off).
func TopP(v float32) GenOption {
	return genOption("top_p", func(p *C.m3_gen_params) C.m3_status { return C.m3_gen_params_set_top_p(p, C.float(v)) })
}

// MinP drops tokens below minP times the top probability, in [0, 1] (0 = off).
func MinP(v float32) GenOption {
	return genOption("min_p", func(p *C.m3_gen_params) C.m3_status { return C.m3_gen_params_set_min_p(p, C.float(v)) })
}

// RepeatPenalty penalises the last lastN tokens (-1: all, 0: none); the window also applies
// to the presence and frequency penalties. 1 = off.
func RepeatPenalty(penalty float32, lastN int32) GenOption {
	return genOption("repeat penalty", func(p *C.m3_gen_params) C.m3_status {
		return C.m3_gen_params_set_repeat_penalty(p, C.float(penalty), C.int32_t(lastN))
	})
}

// PresencePenalty sets the presence penalty (0 = off).
func PresencePenalty(v float32) GenOption {
	return genOption("presence penalty", func(p *C.m3_gen_params) C.m3_status {
		return C.m3_gen_params_set_presence_penalty(p, C.float(v))
	})
}

// FrequencyPenalty sets the frequency penalty (0 = off).
func FrequencyPenalty(v float32) GenOption {
	return genOption("frequency penalty", func(p *C.m3_gen_params) C.m3_status {
		return C.m3_gen_params_set_frequency_penalty(p, C.float(v))
	})
}

// Seed seeds the sampling RNG (results are platform-independent).
func Seed(seed uint64) GenOption {
	return genOption("seed", func(p *C.m3_gen_params) C.m3_status { return C.m3_gen_params_set_seed(p, C.uint64_t(seed)) })
}

// LogitBias adds bias to a token's logit before sampling (-Inf bans it).
func LogitBias(token int32, bias float32) GenOption {
	return genOption("logit bias", func(p *C.m3_gen_params) C.m3_status {
		return C.m3_gen_params_add_logit_bias(p, C.int32_t(token), C.float(bias))
	})
}

// MaxTokens is the number of tokens to generate per turn.
func MaxTokens(n int32) GenOption {
	return genOption("max tokens", func(p *C.m3_gen_params) C.m3_status {
		return C.m3_gen_params_set_max_tokens(p, C.int32_t(n))
	})
}

// StopToken adds a token that ends a turn (it is not emitted).
func StopToken(token int32) GenOption {
	return genOption("stop token", func(p *C.m3_gen_params) C.m3_status {
		return C.m3_gen_params_add_stop_token(p, C.int32_t(token))
	})
}

// StopString adds a string that ends a turn; it is cut from the output. A string with a NUL
// byte is rejected.
func StopString(text string) GenOption {
	return GenOption{func(p *C.m3_gen_params) error {
		if strings.IndexByte(text, 0) >= 0 {
			return invalidArgument("stop string", "stop string contains a NUL byte")
		}
		ctext := C.CString(text)
		defer C.free(unsafe.Pointer(ctext))
		return call("stop string", func() C.m3_status { return C.m3_gen_params_add_stop_string(p, ctext) })
	}}
}

// IgnoreEOS keeps generating past the model's end-of-sequence tokens.
func IgnoreEOS() GenOption {
	return genOption("ignore eos", func(p *C.m3_gen_params) C.m3_status { return C.m3_gen_params_set_ignore_eos(p, 1) })
}

// AddSpecial sets whether the first text pushed into an empty session gets the tokenizer's
// special tokens, e.g. BOS (default true).
func AddSpecial(add bool) GenOption {
	return genOption("add special", func(p *C.m3_gen_params) C.m3_status {
		return C.m3_gen_params_set_add_special(p, cBool(add))
	})
}
