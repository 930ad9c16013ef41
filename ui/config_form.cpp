#include "config_form.h"

#include <QCheckBox>
#include <QComboBox>
#include <QFormLayout>
#include <QLabel>
#include <QSignalBlocker>
#include <QSpinBox>

namespace wan_ui {
namespace {

QComboBox* combo(const QStringList& items) {
  auto* c = new QComboBox;
  c->addItems(items);
  return c;
}

QSpinBox* spin(int lo, int hi) {
  auto* s = new QSpinBox;
  s->setRange(lo, hi);
  return s;
}

const QStringList kDtypes = {"bfloat16", "float16", "float32"};

}  // namespace

ConfigForm::ConfigForm(QWidget* parent) : QWidget(parent) {
  form_ = new QFormLayout(this);
  form_->setFieldGrowthPolicy(QFormLayout::AllNonFixedFieldsGrow);
  form_->setRowWrapPolicy(QFormLayout::WrapLongRows);  // a narrow column puts labels above their fields
  world_size_ = spin(1, 64);
  backend_ = combo({"nccl", "gloo"});
  dit_fsdp_ = new QCheckBox("shard the DiT (FSDP)");
  t5_fsdp_ = new QCheckBox("shard T5 (FSDP)");
  sharding_ = combo({"FULL_SHARD", "SHARD_GRAD_OP", "NO_SHARD"});
  context_parallel_ = new QCheckBox("context parallel (sequence split)");
  use_usp_ = new QCheckBox("USP (xDiT name for the same)");
  ulysses_ = spin(1, 64);
  ring_ = spin(1, 64);
  cfg_parallel_ = new QCheckBox("CFG parallel (cond / uncond on two halves)");
  t5_cpu_ = new QCheckBox("T5 on the CPU");
  idle_expert_ = new QCheckBox("Idle expert in host memory (Wan2.2 A14B)");
  param_dtype_ = combo(kDtypes);
  reduce_dtype_ = combo(kDtypes);
  buffer_dtype_ = combo(kDtypes);
  sync_states_ = new QCheckBox("rank 0 reads, broadcasts (sync_module_states)");
  attention_ = combo({"sdpa", "math"});
  hang_timeout_ = spin(1, 24 * 3600);
  hang_timeout_->setSuffix(" s");
  hang_timeout_->setToolTip(
      "A rank that makes no progress (no step, frame, loaded tensor or collective) this long is "
      "declared hung: the run ends with a message naming it, its phase and its collective.");
  collective_timeout_ = spin(1, 24 * 3600);
  collective_timeout_->setSuffix(" s");
  collective_timeout_->setToolTip("How long one collective waits for its peers before it fails (c10d's timeout).");

  struct Row {
    const char* label;
    QWidget* widget;
    const char* field;
  };
  const Row rows[] = {{"World size", world_size_, "world_size"},
                      {"Backend", backend_, "backend"},
                      {"FSDP", dit_fsdp_, "use_fsdp"},
                      {"", t5_fsdp_, "t5_fsdp"},
                      {"Sharding", sharding_, "sharding_strategy"},
                      {"Sequence", context_parallel_, "use_context_parallel"},
                      {"", use_usp_, "use_usp"},
                      {"Ulysses size", ulysses_, "ulysses_size"},
                      {"Ring size", ring_, "ring_size"},
                      {"CFG", cfg_parallel_, "cfg_parallel"},
                      {"Text encoder", t5_cpu_, "t5_cpu"},
                      {"Experts", idle_expert_, "idle_expert_on_host"},
                      {"Param dtype", param_dtype_, "param_dtype"},
                      {"Reduce dtype", reduce_dtype_, "reduce_dtype"},
                      {"Buffer dtype", buffer_dtype_, "buffer_dtype"},
                      {"Loading", sync_states_, "sync_module_states"},
                      {"Attention", attention_, "attention_mode"},
                      {"Hang timeout", hang_timeout_, "hang_timeout_seconds"},
                      {"Collective timeout", collective_timeout_, "collective_timeout_seconds"}};
  for (const Row& r : rows) {
    r.widget->setObjectName(r.field);
    form_->addRow(r.label, r.widget);
    form_->addRow("", addMessage(r.field));
  }
  world_size_->setToolTip("Processes, one per GPU (or CPU processes with gloo).");
  sharding_->setToolTip(
      "FULL_SHARD: gather each block just before it runs and free it after (least memory).\n"
      "SHARD_GRAD_OP: keep gathered weights for the whole step.\nNO_SHARD: every rank holds everything.");
  param_dtype_->setToolTip("Weights of sharded models (and of every GPU model with dtype auto).");
  // What each setting does and when to use it.
  backend_->setToolTip(
      "How ranks talk: nccl between GPUs (use it on GPUs), gloo between CPU processes.\n"
      "Ranks on the CPU always use gloo.");
  dit_fsdp_->setToolTip(
      "Each rank keeps 1/N of the DiT's weights and gathers a block just before it runs.\n"
      "Use it when the DiT does not fit one GPU (14B on 24-48 GB cards); costs gathers per step.");
  t5_fsdp_->setToolTip(
      "Each rank keeps 1/N of umT5's weights. Use it when umT5 (about 11 GB in bf16) does not fit\n"
      "beside the DiT; or run umT5 on the CPU instead.");
  context_parallel_->setToolTip(
      "Split the video's tokens across ranks (Ulysses x ring below): the fastest way to use\n"
      "several GPUs for one video. Exact: every layout gives the same video.");
  use_usp_->setToolTip("The same switch under xDiT's name (USP); either turns context parallel on.");
  ulysses_->setToolTip(
      "Ranks that split the attention heads (all-to-all). Must divide the model's heads (12 for\n"
      "1.3B, 40 for 14B); fast within one machine.");
  ring_->setToolTip(
      "Ranks that pass keys and values around a ring. Use it for what Ulysses cannot take (heads that do\n"
      "not divide) or across machines. Ulysses x ring (x 2 with CFG parallel) = world size.");
  cfg_parallel_->setToolTip(
      "Run the prompt's and the negative prompt's forwards on two halves of the world at once:\n"
      "about 2x on two GPUs, no loss.");
  t5_cpu_->setToolTip(
      "Encode the prompt on the CPU: frees the text encoder's GPU memory for a few seconds more per run.");
  idle_expert_->setToolTip(
      "Wan2.2 A14B on a GPU: the expert that is not running waits in pinned host memory and is copied in at\n"
      "the boundary (the high-noise one is freed then): one expert's weights on the GPU instead of two.\n"
      "Not with FSDP (sharded experts both stay sharded).");
  sync_states_->setToolTip(
      "Rank 0 reads the checkpoint once and sends each rank its part (one read of a slow disk).\n"
      "Off: every rank reads only its own byte ranges (fast shared storage).");
  attention_->setToolTip(
      "sdpa: LibTorch's fused kernels (flash, memory-efficient, cuDNN), the fast default.\n"
      "math: the reference computation, for checking results.");
  reduce_dtype_->setToolTip(
      "FSDP's gradient-reduction dtype: nothing to reduce in inference; kept for configs of the\n"
      "Python extension.");
  buffer_dtype_->setToolTip(
      "FSDP's buffer dtype: the models have no buffers; kept for configs of the Python extension.");
  for (QSpinBox* s : {world_size_, ulysses_, ring_, hang_timeout_, collective_timeout_})
    connect(s, qOverload<int>(&QSpinBox::valueChanged), this, &ConfigForm::onEdited);
  for (QComboBox* c : {backend_, sharding_, param_dtype_, reduce_dtype_, buffer_dtype_, attention_})
    connect(c, qOverload<int>(&QComboBox::currentIndexChanged), this, &ConfigForm::onEdited);
  for (QCheckBox* c :
       {dit_fsdp_, t5_fsdp_, context_parallel_, use_usp_, cfg_parallel_, t5_cpu_, idle_expert_, sync_states_})
    connect(c, &QCheckBox::toggled, this, &ConfigForm::onEdited);
  setConfig(wan::DistConfig{});
}

QLabel* ConfigForm::addMessage(const QString& field) {
  auto* label = new QLabel;
  label->setObjectName("message_" + field);
  label->setWordWrap(true);
  label->setStyleSheet("color: #c62828;");
  label->setVisible(false);
  messages_[field] = label;
  return label;
}

wan::DistConfig ConfigForm::config() const {
  wan::DistConfig c = base_;
  c.world_size = world_size_->value();
  c.backend = wan::parse_backend(backend_->currentText().toStdString());
  c.dit_fsdp = dit_fsdp_->isChecked();
  c.t5_fsdp = t5_fsdp_->isChecked();
  c.use_fsdp = c.dit_fsdp || c.t5_fsdp;
  c.sharding_strategy = static_cast<wan::ShardingStrategy>(sharding_->currentIndex());
  c.use_context_parallel = context_parallel_->isChecked();
  c.use_usp = use_usp_->isChecked();
  c.ulysses_size = ulysses_->value();
  c.ring_size = ring_->value();
  c.cfg_parallel = cfg_parallel_->isChecked();
  c.t5_cpu = t5_cpu_->isChecked();
  c.idle_expert_on_host = idle_expert_->isChecked();
  c.param_dtype = wan::parse_dtype_name(param_dtype_->currentText().toStdString());
  c.reduce_dtype = wan::parse_dtype_name(reduce_dtype_->currentText().toStdString());
  c.buffer_dtype = wan::parse_dtype_name(buffer_dtype_->currentText().toStdString());
  c.sync_module_states = sync_states_->isChecked();
  c.attention_mode = wan::parse_attention_mode(attention_->currentText().toStdString());
  c.hang_timeout_seconds = hang_timeout_->value();
  c.collective_timeout_seconds = collective_timeout_->value();
  return c;
}

void ConfigForm::setConfig(const wan::DistConfig& c) {
  loading_ = true;
  base_ = c;
  world_size_->setValue(c.world_size);
  backend_->setCurrentText(wan::backend_name(c.backend));
  dit_fsdp_->setChecked(c.dit_fsdp);
  t5_fsdp_->setChecked(c.t5_fsdp);
  sharding_->setCurrentIndex(static_cast<int>(c.sharding_strategy));
  context_parallel_->setChecked(c.use_context_parallel);
  use_usp_->setChecked(c.use_usp);
  ulysses_->setValue(c.ulysses_size);
  ring_->setValue(c.ring_size);
  cfg_parallel_->setChecked(c.cfg_parallel);
  t5_cpu_->setChecked(c.t5_cpu);
  idle_expert_->setChecked(c.idle_expert_on_host);
  param_dtype_->setCurrentText(wan::dtype_long_name(c.param_dtype));
  reduce_dtype_->setCurrentText(wan::dtype_long_name(c.reduce_dtype));
  buffer_dtype_->setCurrentText(wan::dtype_long_name(c.buffer_dtype));
  sync_states_->setChecked(c.sync_module_states);
  attention_->setCurrentText(wan::attention_mode_name(c.attention_mode));
  hang_timeout_->setValue(c.hang_timeout_seconds);
  collective_timeout_->setValue(c.collective_timeout_seconds);
  loading_ = false;
  onEdited();
}

void ConfigForm::setEnvironment(const wan::DistEnvironment& env) {
  env_ = env;
  revalidate();
  emit changed();
}

void ConfigForm::onEdited() {
  if (loading_) return;
  const bool cp = context_parallel_->isChecked() || use_usp_->isChecked();
  ulysses_->setEnabled(cp);
  ring_->setEnabled(cp);
  sharding_->setEnabled(dit_fsdp_->isChecked() || t5_fsdp_->isChecked());
  revalidate();
  emit changed();
}

void ConfigForm::revalidate() {
  problems_ = wan::validate_dist_config(config(), env_);
  for (QLabel* l : messages_) {
    l->clear();
    l->setVisible(false);
  }
  for (const wan::ConfigProblem& p : problems_) {
    QLabel* l = messages_.value(QString::fromStdString(p.field), messages_.value("world_size"));
    const QString text = QString::fromStdString(p.message);
    l->setText(l->text().isEmpty() ? text : l->text() + "\n" + text);
    l->setVisible(true);
  }
}

QString ConfigForm::messageFor(const QString& field) const {
  const QLabel* l = messages_.value(field);
  return l ? l->text() : QString();
}

}  // namespace wan_ui
