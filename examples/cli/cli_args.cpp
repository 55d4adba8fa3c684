#include "cli_args.h"

namespace cli {

Args::Args(const std::vector<std::string>& argv, const std::set<std::string>& value_options,
           const std::set<std::string>& flag_options) {
  for (std::size_t i = 0; i < argv.size(); ++i) {
    // "-n" is the one short option (llama.cpp users type it); everything else is --long.
    const std::string a = argv[i] == "-n" ? "--n" : argv[i];
    if (a.rfind("--", 0) != 0) throw UsageError("unexpected argument '" + a + "'");
    const std::string name = a.substr(2);
    if (flag_options.count(name)) {
      flags_.insert(name);
    } else if (value_options.count(name)) {
      if (i + 1 >= argv.size()) throw UsageError("option --" + name + " needs a value");
      values_[name] = argv[++i];
    } else {
      throw UsageError("unknown option '" + a + "'");
    }
  }
}

std::optional<std::string> Args::get(const std::string& name) const {
  auto it = values_.find(name);
  if (it == values_.end()) return std::nullopt;
  return it->second;
}

std::string Args::require(const std::string& name) const {
  auto v = get(name);
  if (!v) throw UsageError("missing required option --" + name);
  return *v;
}

std::string Args::get_or(const std::string& name, const std::string& fallback) const {
  return get(name).value_or(fallback);
}

long long Args::get_int(const std::string& name, long long fallback) const {
  const auto v = get(name);
  if (!v) return fallback;
  try {
    std::size_t used = 0;
    long long i = std::stoll(*v, &used);
    if (used == v->size()) return i;
  } catch (...) {
  }
  throw UsageError("--" + name + " expects an integer, got '" + *v + "'");
}

}  // namespace cli
