// cada serve: an OpenAI-compatible HTTP server over the rollout engine (serve/server.h).
#include <cstdlib>
#include <memory>

#include "cada/io/files.h"
#include "cada/model/loader.h"
#include "cada/rollout/sampling.h"
#include "cada/serve/server.h"
#include "cada/text/records.h"
#include "cada/util/log.h"
#include "command.h"

// A named namespace per command file: the files may be compiled as one (unity build).
namespace {
namespace cmd_serve {

struct Opts {
  std::string model, served_model_name, chat_template;
  std::string host = "127.0.0.1";
  int port = 8000;
  std::string port_file;
  std::string device = "cpu", dtype = "auto";
  cada::rollout::EngineConfig engine;  // --batch-rows, --engine, --cuda-graphs
  int64_t max_model_len = 0;
  int64_t max_n = 64;
  int64_t max_logprobs = 20;
  int64_t max_rows_per_call = 256;
  double gather_ms = 2.0;
  int64_t http_threads = 128;
  int64_t max_body_bytes = 8 << 20;
  double drain_timeout = 60;
  std::string api_key_env;
  int threads = 0;
};

// The folder's last path component ("models/tiny/" -> "tiny").
std::string folder_name(std::string dir) {
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  const size_t slash = dir.rfind('/');
  return slash == std::string::npos ? dir : dir.substr(slash + 1);
}

int run(const Opts& o) {
  using namespace cada;
  model::configure_threads(o.threads);
  {
    auto problems = o.engine.problems("");
    CADA_CHECK(problems.empty(), "option ", problems.empty() ? "" : problems.front());
  }
  CADA_CHECK(o.port >= 0 && o.port <= 65535, "--port must be in 0..65535, got ", o.port);
  CADA_CHECK(o.max_n >= 1 && o.max_logprobs >= 0 && o.max_rows_per_call >= 1 && o.gather_ms >= 0 &&
                 o.max_body_bytes >= 1024 && o.drain_timeout >= 0,
             "--max-n, --max-rows-per-call must be >= 1, --max-logprobs, --gather-ms, --drain-timeout >= 0, "
             "--max-body-bytes >= 1024");
  std::string api_key;
  if (!o.api_key_env.empty()) {
    const char* k = std::getenv(o.api_key_env.c_str());
    CADA_CHECK(k && *k, "--api-key-env names ", o.api_key_env, ", which is not set");
    api_key = k;
  }
  auto txt = text::load_text(o.model, o.chat_template, /*required=*/true);
  if (!txt.chat_template) CADA_WARN(o.model, ": no chat template; /v1/chat/completions will refuse requests");
  auto net = model::load_model(o.model, {o.device, o.dtype});

  serve::ServeContext ctx;
  ctx.model_name = o.served_model_name.empty() ? folder_name(o.model) : o.served_model_name;
  ctx.tokenizer = txt.tokenizer.get();
  ctx.chat_template = txt.chat_template.get();
  ctx.context_length = o.max_model_len > 0 ? o.max_model_len : net->config().max_position_embeddings;
  CADA_CHECK(ctx.context_length <= net->config().max_position_embeddings, "--max-model-len ", o.max_model_len,
             " exceeds the model's max_position_embeddings ", net->config().max_position_embeddings);
  ctx.max_n = o.max_n;
  ctx.max_top_logprobs = std::min<int64_t>(o.max_logprobs, txt.tokenizer->vocab_size());

  serve::SchedulerOptions so;
  so.engine = o.engine.options("--batch-rows, or send smaller max_tokens / n");
  so.max_rows_per_call = o.max_rows_per_call;
  so.gather_ms = o.gather_ms;
  serve::Scheduler sched(*net, txt.tokenizer.get(), so);

  serve::ServerOptions sv;
  sv.host = o.host;
  sv.port = o.port;
  sv.port_file = o.port_file;
  sv.http_threads = o.http_threads;
  sv.max_body_bytes = o.max_body_bytes;
  sv.drain_timeout_s = o.drain_timeout;
  sv.api_key = api_key;
  serve::Server server(ctx, sched, sv);
  return server.run();
}

CADA_REGISTER_COMMAND(cada::cli::CommandSpec{
    "serve", "OpenAI-compatible HTTP server (chat/completions, completions, streaming, log-probs) over the rollout engine",
    [](CLI::App& sub) -> cada::cli::Runner {
      auto o = std::make_shared<Opts>();
      sub.add_option("--model", o->model, "Hugging Face model folder")->required();
      sub.add_option("--served-model-name", o->served_model_name,
                     "the model id clients send (default: the folder's name)");
      sub.add_option("--host", o->host, "address to listen on (0.0.0.0: every interface)");
      sub.add_option("--port", o->port, "port (0: any free port, printed and written to --port-file)");
      sub.add_option("--port-file", o->port_file, "write the bound port to this file once listening");
      sub.add_option("--device", o->device, "cpu, cuda or cuda:N");
      sub.add_option("--dtype", o->dtype, "auto, float32, bfloat16 or float16");
      sub.add_option("--chat-template", o->chat_template, "override the detected chat template");
      cada::cli::add_struct_options(sub, o->engine);
      sub.add_option("--max-model-len", o->max_model_len,
                     "prompt + completion tokens per request at most (0: max_position_embeddings)");
      sub.add_option("--max-n", o->max_n, "samples per prompt ('n') at most");
      sub.add_option("--max-logprobs", o->max_logprobs, "'top_logprobs' (chat) / 'logprobs' (completions) at most");
      sub.add_option("--max-rows-per-call", o->max_rows_per_call,
                     "samples of queued requests taken into one engine call at most");
      sub.add_option("--gather-ms", o->gather_ms, "wait this long after a request arrives at an idle engine for others");
      sub.add_option("--http-threads", o->http_threads, "connections served at once");
      sub.add_option("--max-body-bytes", o->max_body_bytes, "larger request bodies get 413");
      sub.add_option("--drain-timeout", o->drain_timeout, "seconds to let requests in flight finish on SIGTERM");
      sub.add_option("--api-key-env", o->api_key_env,
                     "environment variable holding the API key clients must send (default: no key)");
      sub.add_option("--threads", o->threads, "intra-op CPU threads (0 = all available cores)");
      return [o]() { return run(*o); };
    }});

}  // namespace cmd_serve
}  // namespace
