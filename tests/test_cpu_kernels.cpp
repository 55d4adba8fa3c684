// The fast CPU kernels of every instruction set this CPU runs, against scalar double
// precision computed here from the documented storage layouts (model_weights.h), on
// random shapes with odd sizes and tails; and the thread pool.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "backends/cpu/simd/kernel_table.h"
#include "backends/cpu/thread_pool.h"
#include "backends/cpu/weight_tiling.h"
#include "model/float_convert.h"
#include "model/quantization.h"

namespace {

using m3::WeightMatrix;
using m3::WeightType;
using m3::cpu::KernelTable;

// A matrix in one storage type, owning its bytes, plus the exact float values it encodes.
struct StoredMatrix {
  WeightMatrix view;
  std::vector<uint8_t> data;
  std::vector<uint16_t> scales;
  std::vector<double> values;  // decoded independently of the kernels
};

double decode_f16(uint16_t h) { return m3::f16_to_f32(h); }

StoredMatrix make_matrix(WeightType type, int64_t rows, int64_t cols, std::mt19937& rng) {
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> src(static_cast<size_t>(rows * cols));
  for (auto& v : src) v = normal(rng);
  StoredMatrix m;
  m.values.resize(src.size());
  switch (type) {
    case WeightType::F32:
      m.data.resize(src.size() * 4);
      std::memcpy(m.data.data(), src.data(), m.data.size());
      for (size_t i = 0; i < src.size(); ++i) m.values[i] = src[i];
      break;
    case WeightType::BF16:
    case WeightType::F16: {
      m.data.resize(src.size() * 2);
      auto* p = reinterpret_cast<uint16_t*>(m.data.data());
      for (size_t i = 0; i < src.size(); ++i) {
        p[i] = type == WeightType::BF16 ? m3::f32_to_bf16(src[i]) : m3::f32_to_f16(src[i]);
        m.values[i] = type == WeightType::BF16 ? m3::bf16_to_f32(p[i]) : decode_f16(p[i]);
      }
      break;
    }
    case WeightType::Q8:
    case WeightType::Q4: {
      const int64_t groups_per_row = cols / m3::kQuantGroup;
      m.data.resize(static_cast<size_t>(type == WeightType::Q8 ? rows * cols : rows * cols / 2));
      m.scales.resize(static_cast<size_t>(rows * groups_per_row));
      m3::quantize_matrix(type, src.data(), rows, cols, m.data.data(), m.scales.data());
      // Decode by the layout in model_weights.h.
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t c = 0; c < cols; ++c) {
          const double scale = decode_f16(m.scales[r * groups_per_row + c / m3::kQuantGroup]);
          double q;
          if (type == WeightType::Q8) {
            q = static_cast<int8_t>(m.data[r * cols + c]);
          } else {
            const int64_t g = c / m3::kQuantGroup, j = c % m3::kQuantGroup;
            const uint8_t byte = m.data[r * cols / 2 + g * 16 + j % 16];
            q = static_cast<double>(j < 16 ? (byte & 15) : (byte >> 4)) - 8.0;
          }
          m.values[r * cols + c] = q * scale;
        }
      break;
    }
  }
  m.view = WeightMatrix{type, rows, cols, m.data.data(), m.scales.empty() ? nullptr : m.scales.data()};
  return m;
}

std::vector<float> random_floats(size_t n, std::mt19937& rng) {
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> v(n);
  for (auto& x : v) x = normal(rng);
  return v;
}

// The largest |x| in the quantization group of column c.
double group_max_abs(const float* x, int64_t c) {
  const int64_t g0 = c / m3::kQuantGroup * m3::kQuantGroup;
  double m = 0;
  for (int64_t j = g0; j < g0 + m3::kQuantGroup; ++j) m = std::max(m, static_cast<double>(std::fabs(x[j])));
  return m;
}

const WeightType kAllTypes[] = {WeightType::F32, WeightType::BF16, WeightType::F16, WeightType::Q8, WeightType::Q4};

class Kernels : public ::testing::TestWithParam<const KernelTable*> {};

TEST(KernelTables, TheBestIsSupportedAndTheBaselineIsAlwaysThere) {
  const auto tables = m3::cpu::supported_kernel_tables();
  ASSERT_FALSE(tables.empty());
  EXPECT_EQ(&m3::cpu::best_kernel_table(), tables.front());
#if defined(__x86_64__)
  EXPECT_STREQ(tables.back()->arch, "sse2");
#endif
  std::printf("[ kernels  ] this CPU runs:");
  for (const KernelTable* t : tables) std::printf(" %s", t->arch);
  std::printf("\n");
}

TEST_P(Kernels, MatmulMatchesDoublePrecisionOnOddShapes) {
  const KernelTable& k = *GetParam();
  std::mt19937 rng(7);
  for (WeightType type : kAllTypes) {
    const bool quantized = type == WeightType::Q8 || type == WeightType::Q4;
    const std::vector<int64_t> col_choices =
        quantized ? std::vector<int64_t>{32, 64, 96, 160, 288} : std::vector<int64_t>{1, 3, 7, 16, 17, 33, 100, 257};
    for (int64_t cols : col_choices)
      for (int64_t rows : {1, 3, 4, 5, 9, 17, 37}) {
        const StoredMatrix m = make_matrix(type, rows, cols, rng);
        for (int64_t n : {1, 2, 3, 4, 5, 7, 9}) {
          const int64_t x_stride = cols + 3, y_stride = rows + 2;  // strides wider than the data
          const auto x = random_floats(static_cast<size_t>(n * x_stride), rng);
          std::vector<float> y(static_cast<size_t>(n * y_stride), -1.0f);
          // A row range that starts inside the matrix, like a thread's share.
          const int64_t r0 = rows > 4 ? 1 : 0;
          k.matmul(m.view, r0, rows, x.data(), x_stride, n, y.data() + r0, y_stride);
          for (int64_t t = 0; t < n; ++t) {
            if (r0 > 0) {
              EXPECT_EQ(y[t * y_stride], -1.0f) << "wrote before row_begin";
            }
            for (int64_t r = r0; r < rows; ++r) {
              double want = 0, mag = 0, input_rounding = 0;
              for (int64_t c = 0; c < cols; ++c) {
                want += m.values[r * cols + c] * x[t * x_stride + c];
                mag += std::fabs(m.values[r * cols + c] * x[t * x_stride + c]);
                // Quantized weights multiply int16 activations (kernels_impl.h): each x is
                // off by at most half a step, 1/32767 of its group's largest |x|.
                if (quantized) input_rounding += std::fabs(m.values[r * cols + c]) * group_max_abs(x.data() + t * x_stride, c) / 65534.0;
              }
              ASSERT_NEAR(y[t * y_stride + r], want, 1e-5 * mag + 1.001 * input_rounding + 1e-30)
                  << k.arch << " " << m3::weight_type_name(type) << " rows=" << rows << " cols=" << cols
                  << " n=" << n << " t=" << t << " r=" << r;
            }
            EXPECT_EQ(y[t * y_stride + rows], -1.0f) << "wrote past the row range";
          }
        }
      }
  }
}

// Each output's summation order is fixed, so computing rows one by one or together gives
// identical bits: what makes a prompt fed in one piece equal the same prompt decoded.
TEST_P(Kernels, MatmulResultsDoNotDependOnHowManyRowsRunTogether) {
  const KernelTable& k = *GetParam();
  std::mt19937 rng(11);
  for (WeightType type : kAllTypes) {
    const int64_t rows = 23, cols = 96;
    const StoredMatrix m = make_matrix(type, rows, cols, rng);
    const int64_t n = 11;
    const auto x = random_floats(static_cast<size_t>(n * cols), rng);
    std::vector<float> together(static_cast<size_t>(n * rows)), alone(together.size());
    k.matmul(m.view, 0, rows, x.data(), cols, n, together.data(), rows);
    for (int64_t t = 0; t < n; ++t) k.matmul(m.view, 0, rows, x.data() + t * cols, cols, 1, alone.data() + t * rows, rows);
    // Split the output rows differently too, as threads do.
    std::vector<float> split(together.size());
    k.matmul(m.view, 0, 5, x.data(), cols, n, split.data(), rows);
    k.matmul(m.view, 5, rows, x.data(), cols, n, split.data() + 5, rows);
    EXPECT_EQ(together, alone) << k.arch << " " << m3::weight_type_name(type);
    EXPECT_EQ(together, split) << k.arch << " " << m3::weight_type_name(type);
  }
}

TEST_P(Kernels, LoadRowDecodesExactly) {
  const KernelTable& k = *GetParam();
  std::mt19937 rng(3);
  for (WeightType type : kAllTypes) {
    const bool quantized = type == WeightType::Q8 || type == WeightType::Q4;
    const int64_t rows = 5, cols = quantized ? 96 : 45;
    const StoredMatrix m = make_matrix(type, rows, cols, rng);
    std::vector<float> out(static_cast<size_t>(cols));
    for (int64_t r = 0; r < rows; ++r) {
      k.load_row(m.view, r, out.data());
      for (int64_t c = 0; c < cols; ++c)
        ASSERT_EQ(out[c], static_cast<float>(m.values[r * cols + c])) << k.arch << " " << m3::weight_type_name(type);
    }
  }
}

// The backend's tiled copies (weight_tiling.h). Quantized row tiles hold the same values in
// another order and must give bit-identical products; float column tiles change the
// summation order, so they are checked against double precision, and must not depend on
// how many input rows run together or where a thread's row range starts or ends. Row
// lookups are bit-identical for both.
TEST_P(Kernels, TiledWeightsMatchAndDoNotDependOnTiling) {
  const KernelTable& k = *GetParam();
  std::mt19937 rng(5);
  for (WeightType type : kAllTypes) {
    const bool quantized = type == WeightType::Q8 || type == WeightType::Q4;
    const int64_t lanes = k.float_lanes, TR = 2 * lanes;
    const std::vector<int64_t> col_choices =
        quantized ? std::vector<int64_t>{32, 96, 160} : std::vector<int64_t>{4, 12, 64, 100};
    const std::vector<int64_t> row_choices =
        quantized ? std::vector<int64_t>{4, 5, 11, 23} : std::vector<int64_t>{TR, TR + 3, 2 * TR + 5, 3 * TR};
    for (int64_t cols : col_choices)
      for (int64_t rows : row_choices) {
        const std::string label = std::string(k.arch) + " " + m3::weight_type_name(type) +
                                  " rows=" + std::to_string(rows) + " cols=" + std::to_string(cols);
        const StoredMatrix m = make_matrix(type, rows, cols, rng);
        m3::cpu::AlignedBytes data, scales;
        const WeightMatrix tiled = m3::cpu::tile_weight_matrix(m.view, lanes, data, scales);
        ASSERT_NE(tiled.data, m.view.data) << "expected a tiled copy: " << label;
        ASSERT_GT(quantized ? tiled.tile_chunk : tiled.column_tile, 0) << label;
        // The copy really is laid out differently (else this test could not fail).
        if (cols > (quantized ? m3::kQuantGroup : 1)) {
          EXPECT_NE(0, std::memcmp(tiled.data, m.view.data, static_cast<size_t>(m3::weight_data_bytes(type, cols) * 4)))
              << label;
        }
        const int64_t n_all = 13;  // more than one group of inputs per tile
        const auto x = random_floats(static_cast<size_t>(n_all * cols), rng);
        std::vector<float> all(static_cast<size_t>(n_all * rows));
        k.matmul(tiled, 0, rows, x.data(), cols, n_all, all.data(), rows);
        if (quantized) {
          std::vector<float> plain(all.size());
          k.matmul(m.view, 0, rows, x.data(), cols, n_all, plain.data(), rows);
          ASSERT_EQ(plain, all) << label;
        } else {
          for (int64_t t = 0; t < n_all; ++t)
            for (int64_t r = 0; r < rows; ++r) {
              double want = 0, mag = 0;
              for (int64_t c = 0; c < cols; ++c) {
                want += m.values[r * cols + c] * x[t * cols + c];
                mag += std::fabs(m.values[r * cols + c] * x[t * cols + c]);
              }
              ASSERT_NEAR(all[t * rows + r], want, 1e-5 * mag + 1e-30) << label << " t=" << t << " r=" << r;
            }
        }
        // Fewer input rows at a time, one by one, and row ranges that cut tiles in the middle.
        for (int64_t n : {1, 2, 5, 6, 7}) {
          std::vector<float> got(static_cast<size_t>(n * rows));
          for (int64_t t0 = 0; t0 < n_all; t0 += n) {
            const int64_t nn = std::min(n, n_all - t0);
            k.matmul(tiled, 0, rows, x.data() + t0 * cols, cols, nn, got.data(), rows);
            for (int64_t i = 0; i < nn * rows; ++i)
              ASSERT_EQ(got[i], all[t0 * rows + i]) << label << " n=" << n << " t0=" << t0 << " i=" << i;
          }
        }
        std::vector<float> split(all.size());
        const int64_t cut1 = std::min<int64_t>(3, rows), cut2 = std::min<int64_t>(rows, cut1 + TR + 1);
        k.matmul(tiled, 0, cut1, x.data(), cols, n_all, split.data(), rows);
        k.matmul(tiled, cut1, cut2, x.data(), cols, n_all, split.data() + cut1, rows);
        k.matmul(tiled, cut2, rows, x.data(), cols, n_all, split.data() + cut2, rows);
        ASSERT_EQ(split, all) << label << " (split rows)";
        std::vector<float> a(static_cast<size_t>(cols)), b(a.size());
        for (int64_t r = 0; r < rows; ++r) {
          k.load_row(m.view, r, a.data());
          k.load_row(tiled, r, b.data());
          ASSERT_EQ(a, b) << label << " row " << r;
        }
      }
  }
}

// The exact order ARCHITECTURE.md documents for column tiles: each output is
// ((S0 + S1) + S2) + S3, S_q an FMA chain over quarter q of the columns (a multiply then an
// add on SSE, which has no FMA), in whole tiles, in the rows past them and in ranges that cut
// a tile. Recomputed here in scalar float, so a path that fuses differently (the compiler's
// choice when an ISA lacks an FMA intrinsic) differs by an ulp somewhere and fails.
TEST_P(Kernels, FloatTilesAccumulateInTheDocumentedOrder) {
  const KernelTable& k = *GetParam();
  const std::string arch = k.arch;
  const bool fused = arch != "sse2" && arch != "sse4.2";
  std::mt19937 rng(11);
  const int64_t TR = 2 * k.float_lanes, rows = 2 * TR + 3, cols = 64, K4 = cols / 4, n = 7;
  for (WeightType type : {WeightType::F32, WeightType::BF16, WeightType::F16}) {
    const StoredMatrix m = make_matrix(type, rows, cols, rng);
    m3::cpu::AlignedBytes data, scales;
    const WeightMatrix tiled = m3::cpu::tile_weight_matrix(m.view, k.float_lanes, data, scales);
    ASSERT_GT(tiled.column_tile, 0) << arch;
    const auto x = random_floats(static_cast<size_t>(n * cols), rng);
    std::vector<float> want(static_cast<size_t>(n * rows));
    for (int64_t t = 0; t < n; ++t)
      for (int64_t r = 0; r < rows; ++r) {
        float total = 0;
        for (int64_t q = 0; q < 4; ++q) {
          float acc = 0;
          for (int64_t kk = 0; kk < K4; ++kk) {
            const float w = static_cast<float>(m.values[r * cols + q * K4 + kk]), v = x[t * cols + q * K4 + kk];
            if (fused) {
              acc = std::fma(w, v, acc);
            } else {
              volatile float product = w * v;  // rounded on its own, never contracted
              acc += product;
            }
          }
          total = q == 0 ? acc : total + acc;
        }
        want[t * rows + r] = total;
      }
    std::vector<float> whole(want.size()), cut(want.size());
    k.matmul(tiled, 0, rows, x.data(), cols, n, whole.data(), rows);
    const int64_t c1 = TR / 2, c2 = TR + 1;  // both cut a tile
    k.matmul(tiled, 0, c1, x.data(), cols, n, cut.data(), rows);
    k.matmul(tiled, c1, c2, x.data(), cols, n, cut.data() + c1, rows);
    k.matmul(tiled, c2, rows, x.data(), cols, n, cut.data() + c2, rows);
    for (size_t i = 0; i < want.size(); ++i) {
      ASSERT_EQ(whole[i], want[i]) << arch << " " << m3::weight_type_name(type) << " whole, row " << i % rows
                                   << " input " << i / rows;
      ASSERT_EQ(cut[i], want[i]) << arch << " " << m3::weight_type_name(type) << " cut, row " << i % rows
                                 << " input " << i / rows;
    }
  }
}

TEST(WeightTiling, LeavesMatricesThatCannotBeTiledAsTheyAre) {
  std::mt19937 rng(9);
  m3::cpu::AlignedBytes data, scales;
  const StoredMatrix few_rows = make_matrix(WeightType::BF16, 15, 64, rng);  // fewer than a 16-row tile
  EXPECT_EQ(m3::cpu::tile_weight_matrix(few_rows.view, 8, data, scales).data, few_rows.view.data);
  const StoredMatrix ragged = make_matrix(WeightType::F32, 32, 22, rng);  // 22 columns: not whole quarters
  const WeightMatrix kept = m3::cpu::tile_weight_matrix(ragged.view, 8, data, scales);
  EXPECT_EQ(kept.data, ragged.view.data);
  EXPECT_EQ(kept.column_tile, 0);
  const StoredMatrix ragged_q8 = make_matrix(WeightType::Q8, 8, 32, rng);
  EXPECT_NE(m3::cpu::tile_weight_matrix(ragged_q8.view, 8, data, scales).data, ragged_q8.view.data);
}

// Every one of the 65536 half-precision bit patterns, including subnormals, infinities and NaNs.
TEST_P(Kernels, EveryHalfPrecisionValueConvertsExactly) {
  const KernelTable& k = *GetParam();
  std::vector<uint16_t> all(65536);
  for (uint32_t i = 0; i < 65536; ++i) all[i] = static_cast<uint16_t>(i);
  const WeightMatrix w{WeightType::F16, 1, 65536, all.data(), nullptr};
  std::vector<float> out(65536);
  k.load_row(w, 0, out.data());
  for (uint32_t i = 0; i < 65536; ++i) {
    const float want = m3::f16_to_f32(static_cast<uint16_t>(i));
    if (std::isnan(want)) {
      ASSERT_TRUE(std::isnan(out[i])) << k.arch << " bits " << i;
    } else {
      uint32_t a, b;
      std::memcpy(&a, &out[i], 4);
      std::memcpy(&b, &want, 4);
      ASSERT_EQ(a, b) << k.arch << " bits " << i;
    }
  }
}

TEST_P(Kernels, SsmHeadStepMatchesScalar) {
  const KernelTable& k = *GetParam();
  std::mt19937 rng(5);
  for (int64_t N : {4, 12, 16, 64, 70})
    for (int64_t P : {1, 8, 24})
      for (int64_t R : {1, 2, 4, 6}) {  // 6: past the fused readout's ranks
        const int64_t kp_stride = N * 3;
        auto h = random_floats(static_cast<size_t>(P * N), rng);
        const auto wp = random_floats(static_cast<size_t>(R * P), rng);
        const auto wc = random_floats(static_cast<size_t>(R * P), rng);
        const auto kp = random_floats(static_cast<size_t>(R * kp_stride), rng);
        const auto kc = random_floats(static_cast<size_t>(R * N), rng);
        const auto q = random_floats(static_cast<size_t>(R * N), rng);
        const float alpha = 0.9f;
        std::vector<double> h_want(h.begin(), h.end()), y_want(static_cast<size_t>(R * P));
        for (int64_t p = 0; p < P; ++p) {
          for (int64_t n = 0; n < N; ++n) {
            double v = alpha * h_want[p * N + n];
            for (int64_t r = 0; r < R; ++r)
              v += static_cast<double>(wp[r * P + p]) * kp[r * kp_stride + n] +
                   static_cast<double>(wc[r * P + p]) * kc[r * N + n];
            h_want[p * N + n] = v;
          }
          for (int64_t r = 0; r < R; ++r) {
            double s = 0;
            for (int64_t n = 0; n < N; ++n) s += h_want[p * N + n] * q[r * N + n];
            y_want[r * P + p] = s;
          }
        }
        std::vector<float> y(static_cast<size_t>(R * P));
        k.ssm_head_step(h.data(), P, N, R, alpha, wp.data(), wc.data(), kp.data(), kp_stride, kc.data(), q.data(),
                        y.data());
        for (size_t i = 0; i < h.size(); ++i) ASSERT_NEAR(h[i], h_want[i], 1e-5 * (1 + std::fabs(h_want[i]))) << k.arch;
        for (size_t i = 0; i < y.size(); ++i) ASSERT_NEAR(y[i], y_want[i], 1e-4 * (1 + std::fabs(y_want[i]))) << k.arch;
      }
}

TEST_P(Kernels, FmaProbeComputes) {
  const KernelTable& k = *GetParam();
  EXPECT_GT(k.float_lanes, 0);
  const float v = k.fma_probe(1000);
  EXPECT_TRUE(std::isfinite(v));
  EXPECT_GT(v, 0.0f);
}

std::string table_name(const ::testing::TestParamInfo<const KernelTable*>& info) {
  std::string s = info.param->arch;
  for (char& c : s)
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  return s;
}

INSTANTIATE_TEST_SUITE_P(EverySupportedIsa, Kernels, ::testing::ValuesIn(m3::cpu::supported_kernel_tables()),
                         table_name);

TEST(ThreadPool, ParallelForCoversEveryIndexOnce) {
  for (int threads : {1, 2, 3, 5}) {
    m3::cpu::ThreadPool pool(threads);
    EXPECT_EQ(pool.size(), threads);
    for (int64_t n : {0, 1, 2, 7, 64, 1000})
      for (int64_t grain : {1, 3, 16, 5000}) {
        std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
        for (auto& h : hits) h = 0;
        pool.parallel_for(n, grain, [&](int64_t b, int64_t e, int t) {
          EXPECT_GE(t, 0);
          EXPECT_LT(t, threads);
          EXPECT_TRUE(b % grain == 0) << "ranges start at grain multiples";
          for (int64_t i = b; i < e; ++i) hits[static_cast<size_t>(i)]++;
        });
        for (int64_t i = 0; i < n; ++i) ASSERT_EQ(hits[static_cast<size_t>(i)].load(), 1) << threads << " " << n;
      }
  }
}

TEST(ThreadPool, ManyShortJobsAndImmediateDestruction) {
  for (int round = 0; round < 50; ++round) {
    m3::cpu::ThreadPool idle(3);  // created and destroyed without a job: workers must not hang
  }
  m3::cpu::ThreadPool pool(3);
  std::atomic<int64_t> sum{0};
  for (int job = 0; job < 20000; ++job)
    pool.run_chunks(5, [&](int64_t chunk, int thread) {
      EXPECT_GE(thread, 0);
      EXPECT_LT(thread, 3);
      sum += chunk + 1;
    });
  EXPECT_EQ(sum.load(), 20000 * (1 + 2 + 3 + 4 + 5));
}

// Jobs spaced wider than the workers' spin, so that every job must wake sleeping workers.
TEST(ThreadPool, WakesSleepingWorkers) {
  m3::cpu::ThreadPool pool(3);
  std::atomic<int> ran{0};
  for (int job = 0; job < 60; ++job) {
    std::this_thread::sleep_for(std::chrono::milliseconds(3));
    pool.run_chunks(3, [&](int64_t, int) { ran++; });
  }
  EXPECT_EQ(ran.load(), 60 * 3);
}

// A job finishes even when the workers are slow to start: the caller takes their chunks.
TEST(ThreadPool, CallerFinishesTheJobWithoutWaitingForBusyWorkers) {
  m3::cpu::ThreadPool pool(4);
  std::atomic<int> ran{0};
  std::atomic<int> on_caller{0};
  for (int job = 0; job < 200; ++job)
    pool.run_chunks(8, [&](int64_t, int thread) {
      ran++;
      if (thread == 0) on_caller++;
    });
  EXPECT_EQ(ran.load(), 200 * 8);
  EXPECT_GT(on_caller.load(), 0);
}

TEST(ThreadPool, DefaultThreadCountHonoursTheEnvironment) {
  ::setenv("MAMBA3RT_THREADS", "3", 1);
  EXPECT_EQ(m3::cpu::default_thread_count(), 3);
  ::setenv("MAMBA3RT_THREADS", "zero", 1);
  EXPECT_GE(m3::cpu::default_thread_count(), 1);  // invalid: falls back to the cores
  ::unsetenv("MAMBA3RT_THREADS");
  EXPECT_GE(m3::cpu::default_thread_count(), 1);
}

}  // namespace
