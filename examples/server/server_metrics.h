// The server's counters and their Prometheus text exposition (GET /metrics).
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <utility>

#include "mamba3rt.h"

namespace server {

class ServerMetrics {
 public:
  void count_request(const std::string& path, int status);
  void stream_opened() { ++open_http_streams_; }
  void stream_closed() { --open_http_streams_; }
  void client_disconnected() { ++disconnects_; }
  void add_ttft_ms(double ms);
  // The time between two tokens of one request, as the HTTP handler received them.
  void add_inter_token_seconds(double s);
  // Engine gauges and counters plus the server's own, in Prometheus text format 0.0.4.
  std::string render(const m3_engine* engine) const;

 private:
  mutable std::mutex mutex_;
  std::map<std::pair<std::string, int>, int64_t> requests_;  // (path, status) -> count
  double ttft_sum_ms_ = 0;
  int64_t ttft_count_ = 0;
  static constexpr int kBuckets = 20;
  static const double kBucketBounds[kBuckets];  // seconds, ascending; +Inf is implicit
  int64_t itl_buckets_[kBuckets + 1] = {};        // per bucket (not cumulative); last: +Inf
  double itl_sum_ = 0;
  std::atomic<int64_t> open_http_streams_{0}, disconnects_{0};
};

}  // namespace server
