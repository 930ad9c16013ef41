#include "model/tokenizer.h"

#include <dlfcn.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <mutex>

#include "model/text_clean.h"
#include "wan/error.h"
#include "wan_spm.h"
#include "weights/file_util.h"

extern "C" char** environ;

namespace wan {
namespace {

struct SpmApi {
  decltype(&wan_spm_load) load = nullptr;
  decltype(&wan_spm_free) free = nullptr;
  decltype(&wan_spm_info) info = nullptr;
  decltype(&wan_spm_encode) encode = nullptr;
};

std::string executable_dir() {
  std::error_code ec;
  auto p = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? std::string(".") : p.parent_path().string();
}

// Finds libwan_spm.so: $WAN_SPM_PLUGIN, <exe>/../lib, <exe>/../lib/wan-studio, then the loader path.
const SpmApi& spm() {
  static SpmApi api;
  static std::once_flag once;
  static std::string failure;
  std::call_once(once, [] {
    std::vector<std::string> candidates;
    if (const char* env = std::getenv("WAN_SPM_PLUGIN")) candidates.emplace_back(env);
    const std::string dir = executable_dir();
    candidates.push_back(dir + "/../lib/libwan_spm.so");
    candidates.push_back(dir + "/../lib/wan-studio/libwan_spm.so");
    candidates.push_back("libwan_spm.so");
    void* lib = nullptr;
    for (const std::string& c : candidates) {
#if WAN_SANITIZE
      // AddressSanitizer refuses RTLD_DEEPBIND; a link-map namespace of its own (dlmopen) keeps the two
      // protobufs apart the same way. The plugin's C API passes only plain buffers across, so the
      // namespace's own C++ runtime never meets ours.
      lib = ::dlmopen(LM_ID_NEWLM, c.c_str(), RTLD_NOW | RTLD_LOCAL);
#else
      lib = ::dlopen(c.c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND);
#endif
      if (lib != nullptr) break;
      failure = ::dlerror();
    }
    if (lib == nullptr) return;
    api.load = reinterpret_cast<decltype(api.load)>(::dlsym(lib, "wan_spm_load"));
    api.free = reinterpret_cast<decltype(api.free)>(::dlsym(lib, "wan_spm_free"));
    api.info = reinterpret_cast<decltype(api.info)>(::dlsym(lib, "wan_spm_info"));
    api.encode = reinterpret_cast<decltype(api.encode)>(::dlsym(lib, "wan_spm_encode"));
  });
  if (api.load == nullptr || api.encode == nullptr)
    throw Error(ErrorCode::kInternal, "cannot load the SentencePiece plugin libwan_spm.so (" + failure +
                                          "); reinstall, or point WAN_SPM_PLUGIN at it");
  return api;
}

}  // namespace

Tokenizer::~Tokenizer() {
  if (handle_ != nullptr) spm().free(handle_);
}

std::unique_ptr<Tokenizer> Tokenizer::from_file(const std::string& path) {
  return from_serialized(read_text_file(path, kMaxTextFileBytes), path);
}

std::unique_ptr<Tokenizer> Tokenizer::from_serialized(const std::string& model_proto, const std::string& context) {
  char err[512] = {0};
  void* handle = spm().load(model_proto.data(), model_proto.size(), err, sizeof err);
  if (handle == nullptr)
    throw Error(ErrorCode::kCorruptFile, context + ": not a SentencePiece tokenizer model (" + err + ")");
  std::unique_ptr<Tokenizer> tok(new Tokenizer());
  tok->handle_ = handle;
  int pad = -1, eos = -1, vocab = 0;
  spm().info(handle, &pad, &eos, &vocab);
  // umT5: pad 0, eos 1 (the HF tokenizer pads with 0 when the model defines no pad piece).
  tok->pad_id_ = pad >= 0 ? pad : 0;
  tok->eos_id_ = eos >= 0 ? eos : 1;
  tok->vocab_size_ = vocab;
  return tok;
}

TokenizedText Tokenizer::encode(const std::string& text, std::int64_t text_len) const {
  const std::string cleaned = clean_prompt(text);
  std::vector<int> pieces(cleaned.size() + 16);
  char err[512] = {0};
  int n = spm().encode(handle_, cleaned.c_str(), pieces.data(), static_cast<int>(pieces.size()), err, sizeof err);
  if (n > static_cast<int>(pieces.size())) {
    pieces.resize(static_cast<std::size_t>(n));
    n = spm().encode(handle_, cleaned.c_str(), pieces.data(), n, err, sizeof err);
  }
  if (n < 0) throw Error(ErrorCode::kInvalidArgument, std::string("cannot tokenize the prompt: ") + err);
  TokenizedText out;
  out.ids.assign(pieces.begin(), pieces.begin() + n);
  if (static_cast<std::int64_t>(out.ids.size()) > text_len - 1) {
    out.dropped_tokens = static_cast<std::int64_t>(out.ids.size()) - (text_len - 1);
    out.ids.resize(static_cast<std::size_t>(text_len - 1));
  }
  out.ids.push_back(eos_id_);
  out.valid_tokens = static_cast<std::int64_t>(out.ids.size());
  out.ids.resize(static_cast<std::size_t>(text_len), pad_id_);
  return out;
}

void train_sentencepiece(const std::map<std::string, std::string>& options) {
  // The helper sits beside the executables (build/bin) or in the install's lib/wan-studio.
  std::vector<std::string> candidates;
  if (const char* env = std::getenv("WAN_SPM_TRAINER")) candidates.emplace_back(env);
  const std::string dir = executable_dir();
  candidates.push_back(dir + "/wan-spm-train");
  candidates.push_back(dir + "/../lib/wan-studio/wan-spm-train");
  std::string helper;
  for (const std::string& c : candidates)
    if (::access(c.c_str(), X_OK) == 0) {
      helper = c;
      break;
    }
  if (helper.empty())
    throw Error(ErrorCode::kInternal,
                "cannot find the wan-spm-train helper beside " + dir + "; reinstall, or set WAN_SPM_TRAINER");
  std::vector<std::string> args{helper};
  for (const auto& [key, value] : options) args.push_back(key + "=" + value);
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  // Its log goes to a file, shown only when training fails.
  char log_path[] = "/tmp/wan-spm-train-XXXXXX";
  const int log_fd = ::mkstemp(log_path);
  if (log_fd < 0) throw Error(ErrorCode::kIo, "cannot create a temporary file for the SentencePiece log");
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, log_fd, STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, log_fd, STDERR_FILENO);
  pid_t pid = 0;
  const int spawn = ::posix_spawn(&pid, helper.c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  ::close(log_fd);
  int status = 0;
  if (spawn == 0) ::waitpid(pid, &status, 0);
  std::string log;
  try {
    log = read_text_file(log_path, kMaxTextFileBytes);
  } catch (const Error&) {
  }
  ::unlink(log_path);
  if (spawn != 0) throw Error(ErrorCode::kInternal, "cannot start " + helper + ": " + std::strerror(spawn));
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    while (!log.empty() && (log.back() == '\n' || log.back() == '\r')) log.pop_back();
    const std::size_t nl = log.rfind('\n');
    throw Error(ErrorCode::kInternal,
                "SentencePiece training failed: " + (nl == std::string::npos ? log : log.substr(nl + 1)));
  }
}

}  // namespace wan
