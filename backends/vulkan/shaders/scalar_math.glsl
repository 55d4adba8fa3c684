// The scalar pieces of a Mamba-3 step, computed as the CPU reference does (spec §3-4). Sine,
// cosine and log1p are our own: Vulkan only promises 2^-11 absolute error for sin/cos, too
// coarse for 1e-4 parity, so the result must not depend on the driver's.
const float kPi = 3.1415927410125732;     // float(pi), as the CPU's numbers::pi_v<float>
const float kTwoPi = 6.2831854820251465;  // 2 * float(pi), exact

float sigmoid(float x) { return 1.0 / (1.0 + exp(-x)); }

float log1p_exp(float x) {  // log(1 + e^x) for x <= 20
  const float e = exp(x);
  return e < 1e-3 ? e * (1.0 - e * (0.5 - e * (1.0 / 3.0))) : log(1.0 + e);
}

float softplus(float x) { return x > 20.0 ? x : log1p_exp(x); }  // PyTorch's threshold

float tanh_accurate(float x) {
  const float a = abs(x);
  if (a < 0.125) {  // odd series: avoids the cancellation of 1 - 2 / (e^2x + 1)
    const float x2 = x * x;
    return x * (1.0 + x2 * (-1.0 / 3.0 + x2 * (2.0 / 15.0 + x2 * (-17.0 / 315.0))));
  }
  const float t = 1.0 - 2.0 / (exp(2.0 * a) + 1.0);
  return x < 0.0 ? -t : t;
}

// fmod(phi, 2 pi) into [0, 2 pi) as the CPU's wrap_angle: exact (Sterbenz) for the usual
// |phi| < 4 pi, so both sides agree at the boundary too.
float wrap_angle(float phi) {
  float r;
  if (phi >= 0.0 && phi < 2.0 * kTwoPi) r = phi >= kTwoPi ? phi - kTwoPi : phi;
  else if (phi < 0.0 && phi > -kTwoPi) r = phi + kTwoPi;
  else {
    r = phi - kTwoPi * trunc(phi / kTwoPi);
    if (r < 0.0) r += kTwoPi;
  }
  return r >= kTwoPi ? 0.0 : r;
}

// sin and cos of x in [0, 2 pi]: reduction by quadrants (pi/2 split in three parts) and
// minimax polynomials on [-pi/4, pi/4].
void sin_cos(float x, out float s, out float c) {
  const float q = floor(x * 0.63661977236758134 + 0.5);
  float r = x - q * 1.5703125;
  r = r - q * 4.837512969970703125e-4;
  r = r - q * 7.54978995489188216e-8;
  const float r2 = r * r;
  const float sr = r + r * r2 * (-1.6666654611e-1 + r2 * (8.3321608736e-3 + r2 * -1.9515295891e-4));
  const float cr = 1.0 - 0.5 * r2 + r2 * r2 * (4.166664568298827e-2 + r2 * (-1.388731625493765e-3 + r2 * 2.443315711809948e-5));
  const int quadrant = int(q) & 3;
  if (quadrant == 0) { s = sr; c = cr; }
  else if (quadrant == 1) { s = cr; c = -sr; }
  else if (quadrant == 2) { s = -sr; c = -cr; }
  else { s = -cr; c = sr; }
}
