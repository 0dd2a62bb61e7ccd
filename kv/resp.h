// RESP2, the Redis wire protocol, as uraftd speaks it: an incremental request parser (arrays
// of bulk strings, and the inline commands telnet and nc send) and the reply encoders. Pure:
// no I/O, no clock. Every length a client controls is bounded, so a client cannot make the
// node buffer without limit; a malformed request is a RespError value with Redis's wording.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace uraft::kv {

// One bulk string (a key, a value). Redis defaults to 512 MB; we stay far lower on purpose:
// a value travels whole in one Raft log entry, one AppendEntries frame (net/ caps frames at
// 64 MiB) and every snapshot, and each follower holds it in memory on the way. 16 MiB keeps a
// maximal write well inside a frame and its cost per replica modest.
inline constexpr std::size_t kBulkBytesMax = std::size_t{16} << 20;
// Elements of one request array. Redis accepts up to INT_MAX; 1 Mi elements is Redis's old
// limit and still allows an MSET of half a million pairs, while each element costs us an
// argument slot before its bytes arrive, so a count is checked before anything is reserved.
inline constexpr std::size_t kArrayElementsMax = std::size_t{1} << 20;
// One inline request line (and one "*<n>" or "$<n>" header line): Redis's
// PROTO_INLINE_MAX_SIZE. Without a newline in this many bytes the client is not speaking RESP.
inline constexpr std::size_t kInlineBytesMax = std::size_t{64} << 10;
// All the bytes of one request (headers, payloads and CRLFs). It bounds what one command can
// make the parser hold: kArrayElementsMax * kBulkBytesMax would be 16 TiB. Two maximal bulks
// and their framing (a SET of a 16 MiB key to a 16 MiB value) fit, and a request still fits
// a log entry and a frame.
inline constexpr std::size_t kRequestBytesMax = 2 * kBulkBytesMax + kInlineBytesMax;

// Before a client has authenticated (when a password is required) it gets Redis's tighter
// bounds: an unauthenticated stranger cannot make the node buffer 32 MiB per connection,
// while AUTH and HELLO ... AUTH fit easily.
inline constexpr std::size_t kUnauthenticatedElementsMax = 10;
inline constexpr std::size_t kUnauthenticatedBulkBytesMax = 16 * 1024;
static_assert(kUnauthenticatedElementsMax <= kArrayElementsMax);
static_assert(kUnauthenticatedBulkBytesMax <= kBulkBytesMax);

// What was wrong with a request. After any of these the stream has lost its place: the server
// replies "-ERR " + message() and closes the connection (Redis does the same).
enum class RespErrorCode : std::uint8_t {
  kInvalidMultibulkLength,  // "*<n>" with n not a number, or above kArrayElementsMax.
  kInvalidBulkLength,       // "$<n>" with n not a number, negative, or above kBulkBytesMax.
  kExpectedDollar,          // An array element that does not start with '$' (see got).
  kTooBigInline,            // An inline line longer than kInlineBytesMax.
  kTooBigMultibulkCount,    // A "*<n>" line longer than kInlineBytesMax.
  kTooBigBulkCount,         // A "$<n>" line longer than kInlineBytesMax.
  kUnbalancedQuotes,        // An inline line with an unterminated "..." or '...'.
  kBulkNotTerminated,       // A bulk string's payload not followed by CRLF.
  kTooBigRequest,           // A request over kRequestBytesMax in all.
};

struct RespError {
  RespErrorCode code;
  char got = 0;  // kExpectedDollar: the byte found instead of '$'.

  // Redis's words, without the "ERR " prefix, e.g. "Protocol error: invalid bulk length"
  // or "Protocol error: expected '$', got 'x'".
  [[nodiscard]] std::string message() const;
  friend bool operator==(const RespError&, const RespError&) = default;
};

// One parsed request. argv views point into the parser's buffer: they stay valid until the
// next call to feed(), prepare() or reset() on the parser that produced them (not next()).
// Copy what must outlive that (owned_argv()).
struct Request {
  std::vector<std::string_view> argv;  // Never empty after a successful next().
  bool inline_form = false;            // Came as an inline line rather than an array.
};

enum class ParseStatus : std::uint8_t {
  kRequest,   // A complete request is in the out-parameter.
  kNeedMore,  // No complete request buffered: read more bytes and feed them.
  kError,     // A protocol error: error() says which. The parser stays in this state.
};

// Incremental request parser. Bytes go in as they arrive (feed(), or prepare()+commit() to
// receive straight into its buffer); next() yields complete requests in order, so a pipelined
// buffer gives several. Empty requests ("*0", "*-1", a blank inline line) are skipped, as
// Redis skips them. The buffer never holds more than one request's bytes beyond what has been
// parsed plus what the caller fed in one go: buffered_bytes() lets the server stop reading
// from a client whose pipeline it has not drained.
class RespParser {
 public:
  RespParser() = default;

  // Appends received bytes. Invalidates earlier Requests' views.
  void feed(std::string_view bytes);
  // A writable region of at least `bytes` bytes at the end of the buffer, for recv() to fill;
  // then commit(n) the n bytes received. Invalidates earlier Requests' views.
  [[nodiscard]] std::span<char> prepare(std::size_t bytes);
  void commit(std::size_t bytes);

  // Parses the next complete request into `out` (its vector is reused: no allocation once
  // warm). Requests' views stay valid across calls to next().
  [[nodiscard]] ParseStatus next(Request& out);

  // Set once next() has returned kError.
  [[nodiscard]] const std::optional<RespError>& error() const noexcept { return error_; }
  // While set, arrays and bulks are held to the kUnauthenticated* bounds (exceeding them is
  // kInvalidMultibulkLength / kInvalidBulkLength, as in Redis). A server sets it before each
  // next() from its session: `parser.set_unauthenticated(password_required && !authenticated)`.
  void set_unauthenticated(bool on) noexcept { unauthenticated_ = on; }
  // Bytes fed but not yet returned as requests.
  [[nodiscard]] std::size_t buffered_bytes() const noexcept { return end_ - pos_; }
  // Forgets everything buffered, and any error.
  void reset();

 private:
  // Called by feed() and prepare(): drops the consumed prefix when that is worth a move.
  void compact();
  [[nodiscard]] ParseStatus fail(RespErrorCode code, char got = 0);
  [[nodiscard]] ParseStatus parse_inline(Request& out);
  [[nodiscard]] ParseStatus parse_array(Request& out);
  // Reads the "*<count>\r\n" or "$<length>\r\n" line at `from` (its type byte already
  // checked or implied). kRequest: the line is complete and its integer, within [min, max], is
  // in `value`, and `next` is the position after the CRLF. kNeedMore: the line is not all
  // buffered yet. kError: no CR within kInlineBytesMax (`too_big`), or not an integer in
  // [min, max] ended by CRLF (`invalid`).
  [[nodiscard]] ParseStatus read_count_line(std::size_t from, std::int64_t min, std::int64_t max,
                                            RespErrorCode too_big, RespErrorCode invalid,
                                            std::int64_t& value, std::size_t& next);

  std::string buf_;        // Bytes [pos_, end_) are unparsed; [end_, size) is prepare() space.
  std::size_t pos_ = 0;    // Start of the request being parsed.
  std::size_t end_ = 0;    // End of the bytes received.
  // The array being parsed survives across kNeedMore so a large request is not rescanned.
  std::size_t scan_ = 0;            // Where parsing of the current request resumes.
  std::int64_t elements_left_ = -1; // -1: no array header parsed yet for this request.
  std::vector<std::size_t> arg_offsets_;  // (offset, length) pairs of the elements so far.
  std::optional<RespError> error_;
  bool unauthenticated_ = false;
};

// Copies a request's arguments, for a request that must outlive the parser's buffer.
[[nodiscard]] std::vector<std::string> owned_argv(std::span<const std::string_view> argv);
// Views of owned arguments.
[[nodiscard]] std::vector<std::string_view> argv_views(std::span<const std::string> argv);

// Encodes a request as a RESP array of bulk strings (what a client sends; tests and
// forwarding use it).
void append_request(std::string& out, std::span<const std::string_view> argv);

// Reply encoders: each appends one RESP2 value to `out`.
// "+s\r\n". s must not contain CR or LF (asserted: replies are ours, not a client's).
void append_simple(std::string& out, std::string_view s);
// "-s\r\n", where s starts with the error code: "ERR syntax error", "NOAUTH ...". CR and LF
// in s (a client's bytes quoted in an error) become spaces, as Redis does.
void append_error(std::string& out, std::string_view s);
// ":v\r\n".
void append_integer(std::string& out, std::int64_t v);
// "$<len>\r\n<s>\r\n".
void append_bulk(std::string& out, std::string_view s);
// "$-1\r\n": the null bulk string (GET of a missing key).
void append_null_bulk(std::string& out);
// "*<n>\r\n", followed by n values the caller appends.
void append_array_header(std::string& out, std::size_t n);
// "*-1\r\n": the null array.
void append_null_array(std::string& out);

// The standard replies.
inline constexpr std::string_view kReplyOk = "+OK\r\n";
inline constexpr std::string_view kReplyNullBulk = "$-1\r\n";

// Splits `bytes` at the end of the first complete RESP2 reply (any type, nested arrays
// included): its length, 0 if the reply is incomplete, or nullopt if the bytes are not RESP.
// For tests and for tools that relay replies; bounded by the same limits as requests.
[[nodiscard]] std::optional<std::size_t> reply_length(std::string_view bytes);

}  // namespace uraft::kv
