#include "server_metrics.h"

#include <sstream>

namespace server {
namespace {

void family(std::ostringstream& out, const char* name, const char* type, const char* help) {
  out << "# HELP " << name << ' ' << help << "\n# TYPE " << name << ' ' << type << '\n';
}

}  // namespace

const double ServerMetrics::kBucketBounds[ServerMetrics::kBuckets] = {
    0.0005, 0.001, 0.002, 0.003, 0.004, 0.006, 0.008, 0.010, 0.012, 0.015,
    0.020,  0.025, 0.030, 0.040, 0.050, 0.075, 0.100, 0.250, 0.500, 1.0};

void ServerMetrics::add_inter_token_seconds(double s) {
  int b = 0;
  while (b < kBuckets && s > kBucketBounds[b]) ++b;
  std::lock_guard<std::mutex> lock(mutex_);
  ++itl_buckets_[b];
  itl_sum_ += s;
}

void ServerMetrics::count_request(const std::string& path, int status) {
  std::lock_guard<std::mutex> lock(mutex_);
  ++requests_[{path, status}];
}

void ServerMetrics::add_ttft_ms(double ms) {
  std::lock_guard<std::mutex> lock(mutex_);
  ttft_sum_ms_ += ms;
  ++ttft_count_;
}

std::string ServerMetrics::render(const m3_engine* engine) const {
  std::ostringstream out;
  struct EngineMetric {
    m3_engine_stat_key key;
    const char* name;
    const char* type;
    const char* help;
  };
  static const EngineMetric kEngine[] = {
      {M3_ENGINE_LIVE_STREAMS, "mamba3rt_streams_live", "gauge", "Streams submitted and not yet freed."},
      {M3_ENGINE_RUNNING_STREAMS, "mamba3rt_streams_running", "gauge", "Streams in the last scheduler step."},
      {M3_ENGINE_WAITING_STREAMS, "mamba3rt_streams_waiting", "gauge", "Streams with work left out of the last step (max_batch)."},
      {M3_ENGINE_PAUSED_STREAMS, "mamba3rt_streams_paused", "gauge", "Streams paused because their reader is behind."},
      {M3_ENGINE_LAST_BATCH, "mamba3rt_decode_batch_size", "gauge", "Streams in the last batched decode."},
      {M3_ENGINE_STEPS, "mamba3rt_scheduler_steps_total", "counter", "Scheduler steps run."},
      {M3_ENGINE_GENERATED_TOKENS, "mamba3rt_generated_tokens_total", "counter", "Tokens sampled, all streams."},
      {M3_ENGINE_PROMPT_TOKENS, "mamba3rt_prompt_tokens_total", "counter", "Input tokens fed, all streams."},
  };
  for (const EngineMetric& m : kEngine) {
    int64_t v = 0;
    if (m3_engine_stat(engine, m.key, &v) != M3_OK) continue;
    family(out, m.name, m.type, m.help);
    out << m.name << ' ' << v << '\n';
  }
  family(out, "mamba3rt_http_streams_open", "gauge", "Server-sent event responses in progress.");
  out << "mamba3rt_http_streams_open " << open_http_streams_.load() << '\n';
  family(out, "mamba3rt_http_client_disconnects_total", "counter", "Streaming clients that left before the end.");
  out << "mamba3rt_http_client_disconnects_total " << disconnects_.load() << '\n';
  std::lock_guard<std::mutex> lock(mutex_);
  family(out, "mamba3rt_http_requests_total", "counter", "HTTP requests by path and status code.");
  for (const auto& [key, n] : requests_)
    out << "mamba3rt_http_requests_total{path=\"" << key.first << "\",code=\"" << key.second << "\"} " << n << '\n';
  family(out, "mamba3rt_time_to_first_token_milliseconds", "summary", "Request arrival to first token.");
  out << "mamba3rt_time_to_first_token_milliseconds_sum " << ttft_sum_ms_ << '\n';
  out << "mamba3rt_time_to_first_token_milliseconds_count " << ttft_count_ << '\n';
  family(out, "mamba3rt_inter_token_seconds", "histogram", "Time between two tokens of one request.");
  int64_t cumulative = 0;
  for (int b = 0; b <= kBuckets; ++b) {
    cumulative += itl_buckets_[b];
    out << "mamba3rt_inter_token_seconds_bucket{le=\"";
    if (b < kBuckets) {
      out << kBucketBounds[b];
    } else {
      out << "+Inf";
    }
    out << "\"} " << cumulative << '\n';
  }
  out << "mamba3rt_inter_token_seconds_sum " << itl_sum_ << '\n';
  out << "mamba3rt_inter_token_seconds_count " << cumulative << '\n';
  return out.str();
}

}  // namespace server
