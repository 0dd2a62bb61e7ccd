// Runs RESP requests from stdin through kv_core alone (RespParser, route_command, Store) and
// writes the replies to stdout, as one redis-server connection would. redis_diff.py compares
// its output with a real redis-server's, byte for byte.
#include <iostream>
#include <iterator>
#include <string>

#include "kv/commands.h"
#include "kv/resp.h"
#include "kv/store.h"

int main() {
  using namespace uraft::kv;
  const std::string input((std::istreambuf_iterator<char>(std::cin)),
                          std::istreambuf_iterator<char>());
  RespParser parser;
  parser.feed(input);
  Request request;
  Store store;
  ClientSession session;
  const LocalSettings settings;
  std::string out;
  for (;;) {
    const ParseStatus status = parser.next(request);
    if (status == ParseStatus::kNeedMore) break;
    if (status == ParseStatus::kError) {
      append_error(out, "ERR " + parser.error()->message());
      break;
    }
    const Routed routed = route_command(request.argv, session, settings, out);
    if (routed.route == Route::kRead) store.read(request.argv, out);
    if (routed.route == Route::kWrite) store.apply(request.argv, out);
    if (routed.route == Route::kRepliedClose) break;
  }
  std::cout << out;
  return 0;
}
