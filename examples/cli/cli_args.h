// Minimal "--key value" / "--flag" argument parsing for the mamba3rt CLI subcommands.
#pragma once

#include <map>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

namespace cli {

// Thrown for bad command lines; main() prints it with the usage and exits 2.
struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class Args {
 public:
  // value_options take one value; flag_options take none. Anything else is a UsageError.
  Args(const std::vector<std::string>& argv, const std::set<std::string>& value_options,
       const std::set<std::string>& flag_options);

  std::optional<std::string> get(const std::string& name) const;
  std::string require(const std::string& name) const;
  std::string get_or(const std::string& name, const std::string& fallback) const;
  bool flag(const std::string& name) const { return flags_.count(name) != 0; }
  // The value as an integer (UsageError if it is not one), or fallback when absent.
  long long get_int(const std::string& name, long long fallback) const;

 private:
  std::map<std::string, std::string> values_;
  std::set<std::string> flags_;
};

}  // namespace cli
