// libFuzzer target for net/frame.h and net/codec.h: any input must decode to an error or to a
// message that re-encodes to exactly the input's bytes and decodes again to the same message.
// Build: meson setup -Dfuzz=true with clang; run: fuzz_frame -max_total_time=60 corpus/
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <string>

#include "net/codec.h"
#include "net/frame.h"

namespace {

constexpr std::uint64_t kCluster = 1;

// The frame path: a whole frame, CRC and all.
void check_frame(std::span<const std::byte> input) {
  const uraft::DecodedFrame d = uraft::decode_frame(input, kCluster);
  if (d.error) return;
  std::string again;
  if (!uraft::encode_frame(kCluster, d.request_id, d.message, again)) std::abort();
  const auto bytes = uraft::byte_span(again);
  const auto consumed = input.first(d.frame_bytes);
  if (!std::equal(bytes.begin(), bytes.end(), consumed.begin(), consumed.end())) std::abort();
  const uraft::DecodedFrame d2 = uraft::decode_frame(bytes, kCluster);
  if (d2.error || d2.message != d.message || d2.request_id != d.request_id) std::abort();
}

// The payload path, which a CRC would otherwise keep the fuzzer from reaching: the first byte
// picks the type (or the first unknown one), the rest is the payload.
void check_payload(std::span<const std::byte> input) {
  if (input.empty()) return;
  const auto type = static_cast<uraft::MessageType>(std::to_integer<std::size_t>(input[0]) %
                                                    (uraft::kMessageTypeCount + 1));
  const uraft::DecodedMessage d = uraft::decode_message(type, input.subspan(1));
  if (d.error) return;
  std::string again;
  uraft::encode_message(d.message, again);
  const auto bytes = uraft::byte_span(again);
  if (!std::equal(bytes.begin(), bytes.end(), input.begin() + 1, input.end())) std::abort();
  const uraft::DecodedMessage d2 = uraft::decode_message(type, bytes);
  if (d2.error || d2.message != d.message) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto input = std::as_bytes(std::span(data, size));
  check_frame(input);
  check_payload(input);
  return 0;
}
