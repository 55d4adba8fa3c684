// Read access to one weight matrix (row-major, any of the checkpoint float types) bound at
// WEIGHT_BINDING of set 0. WEIGHT_TYPE: 0 f32, 1 f16 packed two to a uint, 2 bf16 packed,
// 3 f16 through 16-bit storage (the device has storageBuffer16BitAccess). The packed forms
// are the fallback for devices without 16-bit storage; the backend pads every weight
// buffer to 16 bytes, so a vector read never runs past the end.
// weight_at(i): element i; weight_vec8(v, a, b): elements 8v .. 8v+7.
#if WEIGHT_TYPE == 3
#extension GL_EXT_shader_16bit_storage : require
#endif

#if WEIGHT_TYPE == 0
layout(std430, set = 0, binding = WEIGHT_BINDING) readonly buffer WeightScalars { float w_s[]; };
layout(std430, set = 0, binding = WEIGHT_BINDING) readonly buffer WeightVectors { vec4 w_v[]; };
float weight_at(uint i) { return w_s[i]; }
void weight_vec8(uint v, out vec4 a, out vec4 b) {
  a = w_v[2u * v];
  b = w_v[2u * v + 1u];
}
#elif WEIGHT_TYPE == 3
layout(std430, set = 0, binding = WEIGHT_BINDING) readonly buffer WeightScalars { float16_t w_s[]; };
layout(std430, set = 0, binding = WEIGHT_BINDING) readonly buffer WeightVectors { f16vec4 w_v[]; };
float weight_at(uint i) { return float(w_s[i]); }
void weight_vec8(uint v, out vec4 a, out vec4 b) {
  a = vec4(w_v[2u * v]);
  b = vec4(w_v[2u * v + 1u]);
}
#else
layout(std430, set = 0, binding = WEIGHT_BINDING) readonly buffer WeightScalars { uint w_s[]; };
layout(std430, set = 0, binding = WEIGHT_BINDING) readonly buffer WeightVectors { uvec4 w_v[]; };
#if WEIGHT_TYPE == 1
vec2 unpack_pair(uint u) { return unpackHalf2x16(u); }
float unpack_one(uint half_bits) { return unpackHalf2x16(half_bits).x; }
#else
vec2 unpack_pair(uint u) { return vec2(uintBitsToFloat(u << 16), uintBitsToFloat(u & 0xffff0000u)); }
float unpack_one(uint half_bits) { return uintBitsToFloat(half_bits << 16); }
#endif
float weight_at(uint i) {
  const uint word = w_s[i >> 1];
  return unpack_one((i & 1u) == 0u ? (word & 0xffffu) : (word >> 16));
}
void weight_vec8(uint v, out vec4 a, out vec4 b) {
  const uvec4 u = w_v[v];
  a = vec4(unpack_pair(u.x), unpack_pair(u.y));
  b = vec4(unpack_pair(u.z), unpack_pair(u.w));
}
#endif
