// Prompt cleaning as the reference tokenizer does it (clean='whitespace'): HTML entities unescaped
// twice (Python html.unescape rules), runs of Unicode whitespace collapsed to one space, trimmed.
// Limit: ftfy.fix_text (mojibake repair) is not reproduced.
#pragma once

#include <string>

namespace wan {

std::string html_unescape(const std::string& text);
std::string collapse_whitespace(const std::string& text);
std::string clean_prompt(const std::string& text);

}  // namespace wan
