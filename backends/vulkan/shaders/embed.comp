#version 450
// residual[t, :] = embedding[tokens[t], :] for the tokens whose row lies in this piece of
// the embedding (a matrix larger than maxStorageBufferRange is bound in row pieces).
#extension GL_GOOGLE_include_directive : require
layout(local_size_x = 128) in;
#define WEIGHT_BINDING 0
#include "weights.glsl"
layout(std430, set = 0, binding = 1) readonly buffer Tokens { uint tokens[]; };
layout(std430, set = 0, binding = 2) writeonly buffer Residual { float residual[]; };
layout(push_constant) uniform Push {
  uint cols;        // d_model
  uint first_row;   // the piece's first vocabulary row
  uint piece_rows;
} pc;

void main() {
  const uint i = gl_GlobalInvocationID.x, t = gl_WorkGroupID.y;
  const uint row = tokens[t] - pc.first_row;  // wraps below the piece: then >= piece_rows
  if (i >= pc.cols || row >= pc.piece_rows) return;
  residual[t * pc.cols + i] = weight_at(row * pc.cols + i);
}
