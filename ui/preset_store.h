// Distributed-config presets: the built-in ones (resources/presets/*.json, compiled into the studio)
// and the user's own (JSON files in the studio's config folder), which can be saved, renamed, deleted.
#pragma once
#include <QDir>
#include <QString>
#include <QStringList>

#include "wan/dist_config.h"

namespace wan_ui {

class PresetStore {
 public:
  // builtin_dir: where the built-in JSON files are (":/presets" in the studio); user_dir: writable.
  PresetStore(QString builtin_dir, QString user_dir);

  QStringList names() const;  // built-in first (1-gpu, 2-gpu, ...), then the user's, sorted
  bool isBuiltIn(const QString& name) const;
  bool contains(const QString& name) const;
  // Throws wan::Error with the file's problem (unknown field, bad value). The file's fields are read
  // over `base` (a preset may set only some fields).
  wan::DistConfig load(const QString& name, const wan::DistConfig& base = wan::DistConfig{}) const;
  // A preset without a world size (memory-efficient) changes some settings of the current layout: the
  // studio applies it over the current settings; the others replace them.
  bool isOverlay(const QString& name) const;
  // What a preset is for, in a sentence (built-ins: the studio's table; the JSON files stay plain
  // configs the engine reads, which refuse unknown fields).
  QString description(const QString& name) const;

  // The user's presets. Return an error message, empty on success.
  QString save(const QString& name, const wan::DistConfig& config);
  QString rename(const QString& from, const QString& to);
  QString remove(const QString& name);

  static QString defaultUserDir();

 private:
  QString pathOf(const QString& name) const;
  QString checkUserName(const QString& name) const;
  QString builtin_dir_, user_dir_;
};

}  // namespace wan_ui
