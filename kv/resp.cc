#include "kv/resp.h"

#include <algorithm>
#include <charconv>
#include <cstring>
#include <limits>

#include "core/assert.h"
#include "kv/commands.h"

namespace uraft::kv {

namespace {

// The consumed prefix is dropped once it is at least this large and at least half the
// buffer: small moves are rare and cheap, and a long pipeline is not moved per request.
constexpr std::size_t kCompactBytesMin = 4096;
// An idle parser keeps at most this much buffer for the next requests.
constexpr std::size_t kKeepBytesMax = std::size_t{1} << 20;

// Redis's isspace() set, which its inline splitter uses.
bool is_space(char c) noexcept {
  return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

int hex_value(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Splits an inline line into arguments as Redis's sdssplitargs does (blanks separate; "..."
// with \n \r \t \b \a \\ \" \xHH escapes; '...' with \' only; a closing quote must be followed
// by a blank or the end), writing the unescaped bytes back into the line itself: an argument
// never gets longer than its source, so the write position never passes the read position.
// Appends (offset, length) pairs relative to `line`'s start. False: unbalanced quotes.
bool split_inline(char* line, std::size_t size, std::vector<std::size_t>& offsets) {
  std::size_t r = 0;  // Read position.
  std::size_t w = 0;  // Write position; w <= r throughout.
  auto at = [&](std::size_t i) -> char { return i < size ? line[i] : '\0'; };
  for (;;) {
    while (r < size && is_space(line[r])) ++r;
    if (r >= size) return true;
    const std::size_t start = w;
    bool in_double = false;
    bool in_single = false;
    bool done = false;
    while (!done) {
      const char c = at(r);
      if (in_double) {
        if (c == '\\' && at(r + 1) == 'x' && hex_value(at(r + 2)) >= 0 &&
            hex_value(at(r + 3)) >= 0) {
          line[w++] = static_cast<char>(hex_value(at(r + 2)) * 16 + hex_value(at(r + 3)));
          r += 3;
        } else if (c == '\\' && r + 1 < size) {
          ++r;
          char e = line[r];
          switch (e) {
            case 'n': e = '\n'; break;
            case 'r': e = '\r'; break;
            case 't': e = '\t'; break;
            case 'b': e = '\b'; break;
            case 'a': e = '\a'; break;
            default: break;
          }
          line[w++] = e;
        } else if (c == '"') {
          if (r + 1 < size && !is_space(line[r + 1])) return false;
          done = true;
        } else if (r >= size) {
          return false;
        } else {
          line[w++] = c;
        }
      } else if (in_single) {
        if (c == '\\' && at(r + 1) == '\'') {
          ++r;
          line[w++] = '\'';
        } else if (c == '\'') {
          if (r + 1 < size && !is_space(line[r + 1])) return false;
          done = true;
        } else if (r >= size) {
          return false;
        } else {
          line[w++] = c;
        }
      } else if (r >= size || is_space(c)) {
        done = true;
      } else if (c == '"') {
        in_double = true;
      } else if (c == '\'') {
        in_single = true;
      } else {
        line[w++] = c;
      }
      if (r < size) ++r;
    }
    URAFT_ASSERT(w <= r);
    offsets.push_back(start);
    offsets.push_back(w - start);
  }
}

// The position of the first '\r' in [from, from + limit] within [from, end), or npos.
std::size_t find_cr(const std::string& buf, std::size_t from, std::size_t end,
                    std::size_t limit) {
  const std::size_t stop = std::min(end, from + limit + 1);
  const void* p = std::memchr(buf.data() + from, '\r', stop - from);
  return p == nullptr ? std::string::npos
                      : static_cast<std::size_t>(static_cast<const char*>(p) - buf.data());
}

}  // namespace

std::string RespError::message() const {
  switch (code) {
    case RespErrorCode::kInvalidMultibulkLength: return "Protocol error: invalid multibulk length";
    case RespErrorCode::kInvalidBulkLength: return "Protocol error: invalid bulk length";
    case RespErrorCode::kExpectedDollar: {
      std::string m = "Protocol error: expected '$', got '";
      // Redis prints the byte as is; a control byte would break the reply line, so it is
      // shown as a space (append_error does the same for CR and LF).
      m += (got >= 0x20 && got < 0x7f) ? got : ' ';
      m += '\'';
      return m;
    }
    case RespErrorCode::kTooBigInline: return "Protocol error: too big inline request";
    case RespErrorCode::kTooBigMultibulkCount: return "Protocol error: too big mbulk count string";
    case RespErrorCode::kTooBigBulkCount: return "Protocol error: too big bulk count string";
    case RespErrorCode::kUnbalancedQuotes: return "Protocol error: unbalanced quotes in request";
    case RespErrorCode::kBulkNotTerminated: return "Protocol error: bulk string not terminated by CRLF";
    case RespErrorCode::kTooBigRequest: return "Protocol error: request too big";
  }
  return "Protocol error";
}

void RespParser::feed(std::string_view bytes) {
  compact();
  if (buf_.size() < end_ + bytes.size()) buf_.resize(end_ + bytes.size());
  if (!bytes.empty()) std::memcpy(buf_.data() + end_, bytes.data(), bytes.size());
  end_ += bytes.size();
}

std::span<char> RespParser::prepare(std::size_t bytes) {
  compact();
  if (buf_.size() < end_ + bytes) buf_.resize(end_ + bytes);
  return {buf_.data() + end_, buf_.size() - end_};
}

void RespParser::commit(std::size_t bytes) {
  URAFT_ASSERT(end_ + bytes <= buf_.size());
  end_ += bytes;
}

void RespParser::reset() {
  buf_.clear();
  pos_ = end_ = scan_ = 0;
  elements_left_ = -1;
  arg_offsets_.clear();
  error_.reset();
}

void RespParser::compact() {
  if (pos_ == end_) {
    // Nothing buffered: start over at the front, and give back the memory a large request
    // took (a connection that once sent 32 MiB should not keep 32 MiB).
    pos_ = end_ = scan_ = 0;
    if (buf_.size() > kKeepBytesMax) {
      buf_.clear();
      buf_.shrink_to_fit();
    }
    return;
  }
  if (pos_ == 0) return;
  if (pos_ < kCompactBytesMin || pos_ < (end_ - pos_)) return;
  std::memmove(buf_.data(), buf_.data() + pos_, end_ - pos_);
  scan_ -= pos_;
  end_ -= pos_;
  pos_ = 0;
}

ParseStatus RespParser::fail(RespErrorCode code, char got) {
  error_ = RespError{code, got};
  return ParseStatus::kError;
}

ParseStatus RespParser::next(Request& out) {
  if (error_) return ParseStatus::kError;
  for (;;) {
    URAFT_ASSERT(pos_ <= scan_);
    URAFT_ASSERT(scan_ <= end_);
    if (pos_ == end_) return ParseStatus::kNeedMore;
    const ParseStatus s = buf_[pos_] == '*' ? parse_array(out) : parse_inline(out);
    if (s != ParseStatus::kRequest || !out.argv.empty()) return s;
    // An empty request: skipped, as Redis skips it.
  }
}

ParseStatus RespParser::parse_inline(Request& out) {
  const std::size_t limit = std::min(end_, pos_ + kInlineBytesMax + 1);
  const void* nl = std::memchr(buf_.data() + pos_, '\n', limit - pos_);
  if (nl == nullptr) {
    if (end_ - pos_ > kInlineBytesMax) return fail(RespErrorCode::kTooBigInline);
    return ParseStatus::kNeedMore;
  }
  const auto newline = static_cast<std::size_t>(static_cast<const char*>(nl) - buf_.data());
  std::size_t line_end = newline;
  if (line_end > pos_ && buf_[line_end - 1] == '\r') --line_end;
  // Redis splits the line as a C string: a NUL byte ends it.
  const void* nul = std::memchr(buf_.data() + pos_, '\0', line_end - pos_);
  if (nul != nullptr) line_end = static_cast<std::size_t>(static_cast<const char*>(nul) - buf_.data());
  arg_offsets_.clear();
  if (!split_inline(buf_.data() + pos_, line_end - pos_, arg_offsets_)) {
    return fail(RespErrorCode::kUnbalancedQuotes);
  }
  out.argv.clear();
  out.inline_form = true;
  for (std::size_t i = 0; i < arg_offsets_.size(); i += 2) {
    out.argv.emplace_back(buf_.data() + pos_ + arg_offsets_[i], arg_offsets_[i + 1]);
  }
  arg_offsets_.clear();
  pos_ = scan_ = newline + 1;
  return ParseStatus::kRequest;
}

ParseStatus RespParser::read_count_line(std::size_t from, std::int64_t min, std::int64_t max,
                                        RespErrorCode too_big, RespErrorCode invalid,
                                        std::int64_t& value, std::size_t& next) {
  const std::size_t cr = find_cr(buf_, from, end_, kInlineBytesMax);
  if (cr == std::string::npos) {
    if (end_ - from > kInlineBytesMax) return fail(too_big);
    return ParseStatus::kNeedMore;
  }
  if (cr + 1 >= end_) return ParseStatus::kNeedMore;
  if (buf_[cr + 1] != '\n' ||
      !parse_int64(std::string_view(buf_.data() + from + 1, cr - from - 1), value) ||
      value < min || value > max) {
    return fail(invalid);
  }
  next = cr + 2;
  return ParseStatus::kRequest;
}

ParseStatus RespParser::parse_array(Request& out) {
  if (elements_left_ < 0) {
    // "*<count>\r\n"
    std::int64_t count = 0;
    const ParseStatus s = read_count_line(
        pos_, std::numeric_limits<std::int64_t>::min(),
        static_cast<std::int64_t>(unauthenticated_ ? kUnauthenticatedElementsMax
                                                   : kArrayElementsMax),
        RespErrorCode::kTooBigMultibulkCount, RespErrorCode::kInvalidMultibulkLength, count, scan_);
    if (s != ParseStatus::kRequest) return s;
    if (count <= 0) {
      // "*0" and "*-1": an empty request.
      pos_ = scan_;
      out.argv.clear();
      return ParseStatus::kRequest;
    }
    elements_left_ = count;
    arg_offsets_.clear();
  }
  while (elements_left_ > 0) {
    // "$<length>\r\n<payload>\r\n"
    if (scan_ >= end_) return ParseStatus::kNeedMore;
    if (buf_[scan_] != '$') return fail(RespErrorCode::kExpectedDollar, buf_[scan_]);
    std::int64_t length = 0;
    std::size_t data = 0;
    const ParseStatus s = read_count_line(
        scan_, 0,
        static_cast<std::int64_t>(unauthenticated_ ? kUnauthenticatedBulkBytesMax
                                                   : kBulkBytesMax),
        RespErrorCode::kTooBigBulkCount, RespErrorCode::kInvalidBulkLength, length, data);
    if (s != ParseStatus::kRequest) return s;
    const std::size_t after = data + static_cast<std::size_t>(length) + 2;
    if (after - pos_ > kRequestBytesMax) return fail(RespErrorCode::kTooBigRequest);
    if (after > end_) return ParseStatus::kNeedMore;
    if (buf_[after - 2] != '\r' || buf_[after - 1] != '\n') {
      return fail(RespErrorCode::kBulkNotTerminated);
    }
    arg_offsets_.push_back(data - pos_);
    arg_offsets_.push_back(static_cast<std::size_t>(length));
    scan_ = after;
    --elements_left_;
  }
  out.argv.clear();
  out.inline_form = false;
  for (std::size_t i = 0; i < arg_offsets_.size(); i += 2) {
    out.argv.emplace_back(buf_.data() + pos_ + arg_offsets_[i], arg_offsets_[i + 1]);
  }
  URAFT_ASSERT(!out.argv.empty());
  arg_offsets_.clear();
  elements_left_ = -1;
  pos_ = scan_;
  return ParseStatus::kRequest;
}

std::vector<std::string> owned_argv(std::span<const std::string_view> argv) {
  return {argv.begin(), argv.end()};
}

std::vector<std::string_view> argv_views(std::span<const std::string> argv) {
  return {argv.begin(), argv.end()};
}

void append_request(std::string& out, std::span<const std::string_view> argv) {
  append_array_header(out, argv.size());
  for (const std::string_view a : argv) append_bulk(out, a);
}

namespace {

void append_decimal(std::string& out, std::int64_t v) {
  char buf[24];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, r.ptr);
}

}  // namespace

void append_simple(std::string& out, std::string_view s) {
  URAFT_ASSERT(s.find_first_of("\r\n") == std::string_view::npos);
  out += '+';
  out += s;
  out += "\r\n";
}

void append_error(std::string& out, std::string_view s) {
  out += '-';
  const std::size_t start = out.size();
  out += s;
  std::replace_if(out.begin() + static_cast<std::ptrdiff_t>(start), out.end(),
                  [](char c) { return c == '\r' || c == '\n'; }, ' ');
  out += "\r\n";
}

void append_integer(std::string& out, std::int64_t v) {
  out += ':';
  append_decimal(out, v);
  out += "\r\n";
}

void append_bulk(std::string& out, std::string_view s) {
  out += '$';
  append_decimal(out, static_cast<std::int64_t>(s.size()));
  out += "\r\n";
  out += s;
  out += "\r\n";
}

void append_null_bulk(std::string& out) { out += kReplyNullBulk; }

void append_array_header(std::string& out, std::size_t n) {
  out += '*';
  append_decimal(out, static_cast<std::int64_t>(n));
  out += "\r\n";
}

void append_null_array(std::string& out) { out += "*-1\r\n"; }

std::optional<std::size_t> reply_length(std::string_view b) {
  std::size_t pos = 0;
  std::uint64_t pending = 1;  // Values still to read (arrays add their elements).
  while (pending > 0) {
    if (pos >= b.size()) return 0;
    const char type = b[pos];
    const std::size_t cr = b.find('\r', pos);
    if (cr == std::string_view::npos) {
      return b.size() - pos > kRequestBytesMax ? std::nullopt : std::optional<std::size_t>(0);
    }
    if (cr + 1 >= b.size()) return 0;
    if (b[cr + 1] != '\n') return std::nullopt;
    const std::string_view line = b.substr(pos + 1, cr - pos - 1);
    const std::size_t next = cr + 2;
    --pending;
    std::int64_t n = 0;
    switch (type) {
      case '+':
      case '-':
        pos = next;
        break;
      case ':':
        if (!parse_int64(line, n)) return std::nullopt;
        pos = next;
        break;
      case '$': {
        if (!parse_int64(line, n) || n < -1 || n > static_cast<std::int64_t>(kRequestBytesMax)) {
          return std::nullopt;
        }
        if (n == -1) {
          pos = next;
          break;
        }
        const std::size_t after = next + static_cast<std::size_t>(n) + 2;
        if (after > b.size()) return 0;
        if (b[after - 2] != '\r' || b[after - 1] != '\n') return std::nullopt;
        pos = after;
        break;
      }
      case '*':
        if (!parse_int64(line, n) || n < -1 || n > static_cast<std::int64_t>(kArrayElementsMax)) {
          return std::nullopt;
        }
        if (n > 0) pending += static_cast<std::uint64_t>(n);
        pos = next;
        break;
      default:
        return std::nullopt;
    }
  }
  return pos;
}

}  // namespace uraft::kv
