// `cada serve`: an OpenAI-compatible HTTP server (cpp-httplib) over the rollout engine.
//
//   POST /v1/chat/completions   POST /v1/completions   (protocol.h; "stream": true sends
//                                                         server-sent events, then "data: [DONE]")
//   GET  /v1/models             the one served model
//   GET  /health                200 {"status": "ok"}, 503 {"status": "draining"} once stopping
//   GET  /stats                 requests, tokens, engine calls, queue (JSON)
//
// Every error is a JSON body in OpenAI's shape with a 4xx / 5xx status; a bad request never
// stops the server. SIGTERM or SIGINT drains: new requests get 503, requests in flight finish
// (up to drain_timeout_s), then the server exits 0; a second signal exits at once.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "cada/serve/protocol.h"
#include "cada/serve/scheduler.h"

namespace cada::serve {

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8000;                    // 0: any free port (printed, and written to port_file)
  std::string port_file;              // when set, the bound port is written there (atomically)
  int64_t http_threads = 128;         // connections handled at once (each waits on its request)
  int64_t max_body_bytes = 8 << 20;   // larger bodies get 413
  double drain_timeout_s = 60;        // on SIGTERM, wait at most this long for requests in flight
  std::string api_key;                // when set, /v1/* need "Authorization: Bearer <key>"
};

class Server {
 public:
  // ctx names the model and limits; the scheduler owns the engine. Both outlive the server.
  Server(ServeContext ctx, Scheduler& scheduler, ServerOptions opts);
  ~Server();
  // Binds, serves until SIGINT / SIGTERM, drains; returns the exit code (0 after a clean drain,
  // 1 when requests were still running at drain_timeout_s). Throws cada::Error when the address
  // cannot be bound.
  int run();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace cada::serve
