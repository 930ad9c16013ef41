// The job codec (wan/job.h) and the task defaults (wan/generation.h): the one place a request is
// converted to and from JSON, and the one place its defaults are decided.
#include "wan/job.h"

#include <climits>
#include <cmath>
#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>

#include "core/json_number.h"
#include "wan/error.h"
#include "weights/file_util.h"

namespace wan {
namespace {

using nlohmann::json;

Error invalid(const std::string& message) { return Error(ErrorCode::kInvalidArgument, message); }

// Reads one field of `j` into `out` when present; the type is checked and named in the message.
struct FieldReader {
  const json& j;
  std::string where;  // "request", "request.model"

  const json* find(const char* key) const {
    const auto it = j.find(key);
    return it == j.end() ? nullptr : &*it;
  }
  Error wrong(const char* key, const char* expected, const json& v) const {
    return invalid(where + " field " + key + ": expected " + expected + ", got " + v.dump());
  }
  void text(const char* key, std::string& out) const {
    if (const json* v = find(key)) {
      if (!v->is_string()) throw wrong(key, "a string", *v);
      out = v->get<std::string>();
    }
  }
  void boolean(const char* key, bool& out) const {
    if (const json* v = find(key)) {
      if (!v->is_boolean()) throw wrong(key, "true or false", *v);
      out = v->get<bool>();
    }
  }
  template <typename Int>
  void integer(const char* key, Int& out) const {
    if (const json* v = find(key)) {
      if (!v->is_number_integer()) throw wrong(key, "a whole number", *v);
      const std::optional<Int> value = json_integer<Int>(*v);  // beyond the field's range: an error, never wrapped
      if (!value) throw invalid(where + " field " + key + ": " + v->dump() + " is out of range");
      out = *value;
    }
  }
  void number(const char* key, double& out) const {
    if (const json* v = find(key)) {
      if (!v->is_number()) throw wrong(key, "a number", *v);
      out = v->get<double>();
    }
  }
  // null: not given (the task's default).
  template <typename T>
  void optional(const char* key, std::optional<T>& out) const {
    const json* v = find(key);
    if (!v) return;
    if (v->is_null()) {
      out.reset();
      return;
    }
    T value{};
    if constexpr (std::is_integral_v<T>)
      integer(key, value);
    else
      number(key, value);
    out = value;
  }
  void integers(const char* key, std::vector<int>& out) const {
    if (const json* v = find(key)) {
      if (!v->is_array()) throw wrong(key, "an array of whole numbers", *v);
      std::vector<int> values;
      for (const json& x : *v) {
        const std::optional<int> value = x.is_number_integer() ? json_integer<int>(x) : std::nullopt;
        if (!value) throw wrong(key, "an array of whole numbers", *v);
        values.push_back(*value);
      }
      out = std::move(values);
    }
  }
  void only(std::initializer_list<const char*> known) const {
    for (const auto& item : j.items()) {
      bool ok = false;
      std::string names;
      for (const char* k : known) {
        ok = ok || item.key() == k;
        names += (names.empty() ? "" : ", ") + std::string(k);
      }
      if (!ok) throw invalid("unknown " + where + " field '" + item.key() + "' (known: " + names + ")");
    }
  }
};

json parse_object(const std::string& text, const char* what) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {  // parse_error, and out_of_range for a number beyond a double
    throw invalid(std::string(what) + " is not valid JSON: " + e.what());
  }
  if (!j.is_object()) throw invalid(std::string(what) + " must be a JSON object");
  return j;
}

template <typename T>
json optional_json(const std::optional<T>& v) {
  return v ? json(*v) : json(nullptr);
}

json loras_json(const std::vector<LoraFile>& loras) {
  json out = json::array();
  for (const LoraFile& l : loras)
    out.push_back({{"path", l.path}, {"strength", l.strength}, {"expert", lora_expert_name(l.expert)}});
  return out;
}

json request_json(const GenerationRequest& r) {
  const ModelFiles& m = r.model;
  return {{"prompt", r.prompt},
          {"negative_prompt", r.negative_prompt},
          {"image", r.image},
          {"width", r.width},
          {"height", r.height},
          {"frames", r.frames},
          {"steps", optional_json(r.steps)},
          {"shift", optional_json(r.shift)},
          {"guidance", optional_json(r.guidance)},
          {"guidance_high", optional_json(r.guidance_high)},
          {"boundary", optional_json(r.boundary)},
          {"seed", r.seed},
          {"sampler", sampler_name(r.sampler)},
          {"denoising_step_list", r.denoising_step_list},
          {"cache", step_cache_name(r.cache)},
          {"dtype", dtype_name(r.dtype)},
          {"fp8_weights", fp8_weights_name(r.fp8_weights)},
          {"device", device_name(r.device)},
          {"cpu_noise", r.cpu_noise},
          {"model",
           {{"model_dir", m.model_dir},
            {"dit", m.dit},
            {"t5", m.t5},
            {"vae", m.vae},
            {"tokenizer", m.tokenizer},
            {"clip", m.clip},
            {"dit_high", m.dit_high},
            {"loras", loras_json(m.loras)},
            {"lora_allow_partial", m.lora_allow_partial}}},
          {"output", r.output},
          {"frames_dir", r.frames_dir},
          {"save_latent", r.save_latent},
          {"decode_latent", r.decode_latent},
          {"fps", optional_json(r.fps)},
          {"crf", r.crf},
          {"overwrite", r.overwrite},
          {"force", r.force}};
}

GenerationRequest request_from(const json& j, const GenerationRequest& base) {
  const FieldReader f{j, "request"};
  f.only({"prompt",
          "negative_prompt",
          "image",
          "width",
          "height",
          "frames",
          "steps",
          "shift",
          "guidance",
          "seed",
          "sampler",
          "dtype",
          "device",
          "cpu_noise",
          "model",
          "output",
          "frames_dir",
          "save_latent",
          "decode_latent",
          "fps",
          "crf",
          "overwrite",
          "force",
          "fp8_weights",
          "guidance_high",
          "boundary",
          "denoising_step_list",
          "cache"});
  GenerationRequest r = base;
  f.text("prompt", r.prompt);
  f.text("negative_prompt", r.negative_prompt);
  f.text("image", r.image);
  f.integer("width", r.width);
  f.integer("height", r.height);
  f.integer("frames", r.frames);
  f.optional("steps", r.steps);
  f.optional("shift", r.shift);
  f.optional("guidance", r.guidance);
  f.optional("guidance_high", r.guidance_high);
  f.optional("boundary", r.boundary);
  f.integer("seed", r.seed);
  std::string sampler = sampler_name(r.sampler);
  f.text("sampler", sampler);
  r.sampler = parse_sampler(sampler);
  f.integers("denoising_step_list", r.denoising_step_list);
  std::string cache = step_cache_name(r.cache);
  f.text("cache", cache);
  r.cache = parse_step_cache(cache);
  std::string dtype = dtype_name(r.dtype), device = device_name(r.device);
  f.text("dtype", dtype);
  f.text("device", device);
  r.dtype = parse_dtype_name(dtype);
  r.device = parse_device_name(device);
  std::string fp8 = fp8_weights_name(r.fp8_weights);
  f.text("fp8_weights", fp8);
  r.fp8_weights = parse_fp8_weights(fp8);
  f.boolean("cpu_noise", r.cpu_noise);
  if (const json* m = f.find("model")) {
    if (!m->is_object()) throw f.wrong("model", "an object of file names", *m);
    const FieldReader mf{*m, "request.model"};
    mf.only({"model_dir", "dit", "dit_high", "t5", "vae", "tokenizer", "clip", "loras", "lora_allow_partial"});
    mf.text("model_dir", r.model.model_dir);
    mf.text("dit", r.model.dit);
    mf.text("t5", r.model.t5);
    mf.text("vae", r.model.vae);
    mf.text("tokenizer", r.model.tokenizer);
    mf.text("clip", r.model.clip);
    mf.text("dit_high", r.model.dit_high);
    mf.boolean("lora_allow_partial", r.model.lora_allow_partial);
    if (const json* loras = mf.find("loras")) {
      if (!loras->is_array()) throw mf.wrong("loras", "an array of {\"path\", \"strength\", \"expert\"}", *loras);
      r.model.loras.clear();
      for (const json& l : *loras) {
        if (!l.is_object()) throw mf.wrong("loras", "an array of {\"path\", \"strength\", \"expert\"}", l);
        const FieldReader lf{l, "request.model.loras[]"};
        lf.only({"path", "strength", "expert"});
        LoraFile file;
        lf.text("path", file.path);
        if (file.path.empty()) throw mf.wrong("loras", "each LoRA with its \"path\"", l);
        lf.number("strength", file.strength);
        std::string expert = lora_expert_name(file.expert);
        lf.text("expert", expert);
        file.expert = parse_lora_expert(expert);
        if (!std::isfinite(file.strength) || std::fabs(file.strength) > 100)
          throw mf.wrong("loras", "strengths from -100 to 100", l);
        r.model.loras.push_back(file);
      }
    }
  }
  f.text("output", r.output);
  f.text("frames_dir", r.frames_dir);
  f.text("save_latent", r.save_latent);
  f.text("decode_latent", r.decode_latent);
  f.optional("fps", r.fps);
  f.integer("crf", r.crf);
  f.boolean("overwrite", r.overwrite);
  f.boolean("force", r.force);
  return r;
}

}  // namespace

Task request_task(const GenerationRequest& request) {
  return request.image.empty() ? Task::kTextToVideo : Task::kImageToVideo;
}

const char* task_name(Task task) { return task == Task::kImageToVideo ? "i2v" : "t2v"; }

TaskDefaults task_defaults(Task task, int width, int height) {
  TaskDefaults d;  // wan/configs/wan_t2v_14B.py, wan_t2v_1_3B.py: 50 steps, shift 5.0, guide scale 5.0
  if (task == Task::kImageToVideo) {
    d.steps = 40;  // generate.py _validate_args: sample_steps = 40 for i2v
    // generate.py _validate_args: sample_shift = 3.0 for i2v at 832*480 and 480*832.
    if ((width == 832 && height == 480) || (width == 480 && height == 832)) d.shift = 3.0;
  }
  return d;
}

ExpertDefaults expert_defaults(Task task) {
  if (task == Task::kImageToVideo) return ExpertDefaults{40, 5.0, 3.5, 3.5, 0.900};
  return ExpertDefaults{};
}

GenerationRequest resolve_defaults(const GenerationRequest& request) {
  GenerationRequest r = request;
  if (r.sampler == SamplerKind::kDistill) {
    // The published 4-step models' settings (LightX2V's configs), the same for every model; make_plan
    // keeps them over the per-model defaults.
    if (!r.steps)
      r.steps = r.denoising_step_list.empty() ? kDistillDefaultSteps : static_cast<int>(r.denoising_step_list.size());
    if (!r.shift) r.shift = kDistillDefaultShift;
    if (!r.guidance) r.guidance = kDistillDefaultGuidance;
    return r;
  }
  const TaskDefaults d = task_defaults(request_task(r), r.width, r.height);
  if (!r.steps) r.steps = d.steps;
  if (!r.shift) r.shift = d.shift;
  if (!r.guidance) r.guidance = d.guidance;
  return r;
}

std::string request_to_json(const GenerationRequest& request) { return request_json(request).dump(2) + "\n"; }

GenerationRequest request_from_json(const std::string& json_text, const GenerationRequest& base) {
  return request_from(parse_object(json_text, "request"), base);
}

std::string job_to_json(const Job& job) {
  const json j = {{"format", kJobFormat},
                  {"run_id", job.run_id},
                  {"request", request_json(job.request)},
                  {"config", json::parse(dist_config_to_json(job.config))}};
  return j.dump(2) + "\n";
}

Job job_from_json(const std::string& json_text) {
  const json j = parse_object(json_text, "job");
  const FieldReader f{j, "job"};
  std::string format;
  f.text("format", format);
  if (format.rfind("wan-studio-sidecar/", 0) == 0)
    throw invalid(
        "this is the sidecar of a video, not a job file: re-run it from the studio's history, or write a "
        "job with `wan generate --write-job`");
  if (format != kJobFormat)
    throw invalid("not a job file (format '" + format + "', expected '" + kJobFormat +
                  "'): write it with `wan generate --write-job`");
  f.only({"format", "run_id", "request", "config"});
  Job job;
  f.text("run_id", job.run_id);
  if (const json* r = f.find("request")) {
    if (!r->is_object()) throw f.wrong("request", "an object", *r);
    job.request = request_from(*r, GenerationRequest{});
  }
  if (const json* c = f.find("config")) {
    if (!c->is_object()) throw f.wrong("config", "an object", *c);
    job.config = dist_config_from_json(c->dump());
  }
  return job;
}

Job load_job(const std::string& path) {
  const std::string text = read_text_file(path);  // kFileNotFound / kIo with the path
  try {
    return job_from_json(text);
  } catch (const Error& e) {
    throw Error(e.code(), path + ": " + e.what());
  }
}

void save_job(const std::string& path, const Job& job) {
  const std::string text = job_to_json(job);
  AtomicFileWriter w(path);
  w.write(text.data(), text.size());
  w.commit();
}

Job job_from_sidecar(const std::string& json_text) {
  const json j = parse_object(json_text, "sidecar");
  Job job;
  if (j.contains("request")) {  // wan-studio-sidecar/2: the job codec's own objects
    if (!j["request"].is_object()) throw invalid("sidecar field request: expected an object");
    job.request = request_from(j["request"], GenerationRequest{});
    if (j.contains("config") && j["config"].is_object()) job.config = dist_config_from_json(j["config"].dump());
    return job;
  }
  // The first sidecars (before the job codec): flat settings, the output's size in width/height, the
  // picture and the area asked for under image / max_area, the distributed config under "world".
  if (!j.contains("prompt") || !j.contains("seed"))
    throw invalid("not a sidecar of Wan Studio (no request, prompt or seed)");
  json r = json::object();
  for (const char* key : {"prompt", "negative_prompt", "seed", "width", "height", "frames", "steps", "sampler", "shift",
                          "guidance", "fps", "crf", "dtype", "device", "cpu_noise"})
    if (j.contains(key)) r[key] = j[key];
  if (j.contains("image") && j["image"].is_object()) r["image"] = j["image"].value("path", "");
  if (j.contains("max_area") && j["max_area"].is_object()) {
    r["width"] = j["max_area"].value("width", 0);
    r["height"] = j["max_area"].value("height", 0);
  }
  job.request = request_from(r, GenerationRequest{});
  if (j.contains("world") && j["world"].is_object() && j["world"].value("world_size", 1) > 1)
    job.config = dist_config_from_json(j["world"].dump());
  return job;
}

}  // namespace wan
