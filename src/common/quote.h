// Quoting of untrusted strings (tensor names, zip entry names, pickle globals) for error
// messages: '...' with non-printable bytes escaped and long strings cut.
#pragma once

#include <string>
#include <string_view>

namespace m3 {

std::string quote_for_message(std::string_view s);

}  // namespace m3
