#include "model/text_clean.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string_view>
#include <utility>

namespace wan {
namespace {

struct HtmlEntity {
  const char* name;
  const char* value;
};
#include "model/html_entities.inc"

const HtmlEntity* find_entity(std::string_view name) {
  static const std::size_t n = sizeof(kHtmlEntities) / sizeof(kHtmlEntities[0]);
  auto it = std::lower_bound(kHtmlEntities, kHtmlEntities + n, name,
                             [](const HtmlEntity& e, std::string_view key) { return std::string_view(e.name) < key; });
  if (it != kHtmlEntities + n && std::string_view(it->name) == name) return it;
  return nullptr;
}

void append_utf8(std::string& out, std::uint32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

// Python's html._replace_charref for a numeric reference body ("#123" / "#x1F").
std::string numeric_charref(std::string_view s) {
  std::uint64_t num = 0;
  const bool hex = s.size() > 1 && (s[1] == 'x' || s[1] == 'X');
  for (std::size_t i = hex ? 2 : 1; i < s.size() && s[i] != ';'; ++i) {
    const char c = s[i];
    const int digit = (c >= '0' && c <= '9') ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : c - 'A' + 10;
    num = num * (hex ? 16 : 10) + static_cast<std::uint64_t>(digit);
    if (num > 0x10FFFFull * 16) num = 0x110000 * 16;  // saturate: anything this large is invalid
  }
  for (const auto& [from, to] : kInvalidCharrefs)
    if (num == from) {
      std::string out;
      append_utf8(out, to);
      return out;
    }
  std::string out;
  if ((num >= 0xD800 && num <= 0xDFFF) || num > 0x10FFFF) {
    append_utf8(out, 0xFFFD);
    return out;
  }
  for (std::uint32_t cp : kInvalidCodepoints)
    if (num == cp) return out;
  append_utf8(out, static_cast<std::uint32_t>(num));
  return out;
}

bool is_hex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

// Decodes one UTF-8 code point at s[i]; returns its length (1 for invalid bytes).
std::size_t utf8_next(const std::string& s, std::size_t i, std::uint32_t* cp) {
  const unsigned char c = static_cast<unsigned char>(s[i]);
  std::size_t len = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 1;
  if (i + len > s.size()) len = 1;
  if (len == 1) {
    *cp = c;
    return 1;
  }
  std::uint32_t v = c & (0xFF >> (len + 1));
  for (std::size_t k = 1; k < len; ++k) v = (v << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3F);
  *cp = v;
  return len;
}

// Python str.isspace()
bool is_unicode_space(std::uint32_t c) {
  return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

}  // namespace

std::string html_unescape(const std::string& text) {
  if (text.find('&') == std::string::npos) return text;
  std::string out;
  std::size_t i = 0;
  while (i < text.size()) {
    if (text[i] != '&') {
      out.push_back(text[i++]);
      continue;
    }
    // Match the regex &(#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[^\t\n\f <&#;]{1,32};?)
    std::size_t j = i + 1;
    if (j < text.size() && text[j] == '#') {
      std::size_t k = j + 1;
      bool hex = k < text.size() && (text[k] == 'x' || text[k] == 'X');
      if (hex) ++k;
      const std::size_t digits_start = k;
      while (k < text.size() && (hex ? is_hex(text[k]) : (text[k] >= '0' && text[k] <= '9'))) ++k;
      if (k == digits_start) {
        out.push_back(text[i++]);
        continue;
      }
      if (k < text.size() && text[k] == ';') ++k;
      out += numeric_charref(std::string_view(text).substr(j, k - j));
      i = k;
      continue;
    }
    std::size_t k = j;
    while (k < text.size() && k - j < 32 && std::strchr("\t\n\f <&#;", text[k]) == nullptr) ++k;
    if (k == j) {
      out.push_back(text[i++]);
      continue;
    }
    if (k < text.size() && text[k] == ';') ++k;
    const std::string_view s = std::string_view(text).substr(j, k - j);
    if (const HtmlEntity* e = find_entity(s)) {
      out += e->value;
    } else {
      bool done = false;
      for (std::size_t x = s.size() - 1; x > 1; --x) {
        if (const HtmlEntity* p = find_entity(s.substr(0, x))) {
          out += p->value;
          out += std::string(s.substr(x));
          done = true;
          break;
        }
      }
      if (!done) {
        out.push_back('&');
        out += std::string(s);
      }
    }
    i = k;
  }
  return out;
}

std::string collapse_whitespace(const std::string& text) {
  std::string out;
  bool in_space = false;
  for (std::size_t i = 0; i < text.size();) {
    std::uint32_t cp = 0;
    const std::size_t len = utf8_next(text, i, &cp);
    if (is_unicode_space(cp)) {
      in_space = true;
    } else {
      if (in_space && !out.empty()) out.push_back(' ');
      in_space = false;
      out.append(text, i, len);
    }
    i += len;
  }
  return out;
}

std::string clean_prompt(const std::string& text) { return collapse_whitespace(html_unescape(html_unescape(text))); }

}  // namespace wan
