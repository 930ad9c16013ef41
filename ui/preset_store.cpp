#include "preset_store.h"

#include <QFile>
#include <QFileInfo>
#include <QJsonDocument>
#include <QJsonObject>
#include <QMap>
#include <QRegularExpression>
#include <QSaveFile>
#include <QStandardPaths>

#include "wan/error.h"

namespace wan_ui {
namespace {

QStringList jsonStems(const QString& dir) {
  QStringList out;
  for (const QFileInfo& f : QDir(dir).entryInfoList({"*.json"}, QDir::Files, QDir::Name)) out << f.completeBaseName();
  return out;
}

}  // namespace

PresetStore::PresetStore(QString builtin_dir, QString user_dir)
    : builtin_dir_(std::move(builtin_dir)), user_dir_(std::move(user_dir)) {}

QString PresetStore::defaultUserDir() {
  return QStandardPaths::writableLocation(QStandardPaths::AppConfigLocation) + "/presets";
}

QStringList PresetStore::names() const {
  QStringList builtin = jsonStems(builtin_dir_);
  // GPU counts in numeric order, then the named ones.
  std::sort(builtin.begin(), builtin.end(), [](const QString& a, const QString& b) {
    const int na = a.section('-', 0, 0).toInt(), nb = b.section('-', 0, 0).toInt();
    if ((na > 0) != (nb > 0)) return na > 0;
    return na != nb ? na < nb : a < b;
  });
  QStringList out = builtin;
  for (const QString& n : jsonStems(user_dir_))
    if (!builtin.contains(n)) out << n;
  return out;
}

bool PresetStore::isBuiltIn(const QString& name) const {
  return QFileInfo::exists(builtin_dir_ + "/" + name + ".json");
}
bool PresetStore::contains(const QString& name) const {
  return isBuiltIn(name) || QFileInfo::exists(user_dir_ + "/" + name + ".json");
}

QString PresetStore::pathOf(const QString& name) const {
  return isBuiltIn(name) ? builtin_dir_ + "/" + name + ".json" : user_dir_ + "/" + name + ".json";
}

wan::DistConfig PresetStore::load(const QString& name, const wan::DistConfig& base) const {
  QFile f(pathOf(name));
  if (!f.open(QIODevice::ReadOnly))
    throw wan::Error(wan::ErrorCode::kFileNotFound,
                     "preset " + name.toStdString() + " not found (" + f.fileName().toStdString() + ")");
  try {
    return wan::dist_config_from_json(f.readAll().toStdString(), base);
  } catch (const wan::Error& e) {
    throw wan::Error(e.code(), "preset " + name.toStdString() + ": " + e.what());
  }
}

bool PresetStore::isOverlay(const QString& name) const {
  QFile f(pathOf(name));
  if (!f.open(QIODevice::ReadOnly)) return false;
  const QJsonDocument doc = QJsonDocument::fromJson(f.readAll());
  return doc.isObject() && !doc.object().contains("world_size");
}

QString PresetStore::description(const QString& name) const {
  static const QMap<QString, QString> kBuiltIn = {
      {"1-gpu", "One GPU (or one CPU process): no sharding, no sequence split. 1.3B at 480p fits a 24 GB card."},
      {"2-gpu", "Two GPUs, the DiT and umT5 sharded (FSDP): 14B on two cards that cannot hold it alone."},
      {"4-gpu", "Four GPUs: FSDP and context parallel (Ulysses 2 x ring 2): about 3x faster than one GPU."},
      {"8-gpu", "Eight GPUs: FSDP and context parallel (Ulysses 4 x ring 2): 14B at 720p in minutes."},
      {"memory-efficient",
       "Changes the current layout to use the least GPU memory: FSDP, umT5 on the CPU, rank 0 reads and "
       "broadcasts, float32 reduce and buffers. On one process FSDP stays off (it needs 2 or more ranks)."},
      {"high-performance",
       "Four GPUs, Ulysses 2 x ring 2 (USP) with FSDP over NCCL: the recommended fast layout for four cards."},
  };
  if (isBuiltIn(name)) return kBuiltIn.value(name, "A built-in preset.");
  if (contains(name)) return "Your preset (" + user_dir_ + "/" + name + ".json).";
  return {};
}

QString PresetStore::checkUserName(const QString& name) const {
  static const QRegularExpression ok("^[A-Za-z0-9][A-Za-z0-9 _.-]{0,63}$");
  if (!ok.match(name).hasMatch()) return "Preset names use letters, digits, space, '_', '.' and '-' (at most 64).";
  if (name.compare("Auto", Qt::CaseInsensitive) == 0) return "\"Auto\" is the automatic preset; pick another name.";
  if (isBuiltIn(name)) return "\"" + name + "\" is a built-in preset; pick another name.";
  return {};
}

QString PresetStore::save(const QString& name, const wan::DistConfig& config) {
  if (QString e = checkUserName(name); !e.isEmpty()) return e;
  if (!QDir().mkpath(user_dir_)) return "Cannot create the preset folder " + user_dir_ + ".";
  QSaveFile f(user_dir_ + "/" + name + ".json");
  if (!f.open(QIODevice::WriteOnly)) return "Cannot write " + f.fileName() + ": " + f.errorString();
  f.write(QByteArray::fromStdString(wan::dist_config_to_json(config)));
  if (!f.commit()) return "Cannot write " + f.fileName() + ": " + f.errorString();
  return {};
}

QString PresetStore::rename(const QString& from, const QString& to) {
  if (isBuiltIn(from)) return "Built-in presets cannot be renamed.";
  if (!QFileInfo::exists(user_dir_ + "/" + from + ".json")) return "No preset named \"" + from + "\".";
  if (QString e = checkUserName(to); !e.isEmpty()) return e;
  if (contains(to)) return "A preset named \"" + to + "\" exists already.";
  if (!QFile::rename(user_dir_ + "/" + from + ".json", user_dir_ + "/" + to + ".json"))
    return "Cannot rename the preset file.";
  return {};
}

QString PresetStore::remove(const QString& name) {
  if (isBuiltIn(name)) return "Built-in presets cannot be deleted.";
  if (!QFile::remove(user_dir_ + "/" + name + ".json")) return "No preset named \"" + name + "\".";
  return {};
}

}  // namespace wan_ui
