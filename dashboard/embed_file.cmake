# Writes OUT, a C++ source that defines churnlab::dashboard_assets::NAME, a std::string_view of
# FILE's bytes (every byte a \x escape, so any content is safe in the literal). Run at build time
# (cmake -P) by dashboard/CMakeLists.txt; the binary then needs none of these files.
file(READ "${FILE}" hex HEX)
string(LENGTH "${hex}" digits)
math(EXPR bytes "${digits} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "\\\\x\\1" escaped "${hex}")
file(WRITE "${OUT}.tmp"
  "// Generated from ${FILE} by dashboard/embed_file.cmake; do not edit.\n"
  "#include <string_view>\n\n"
  "namespace churnlab::dashboard_assets {\n"
  "extern const std::string_view ${NAME};\n"
  "const std::string_view ${NAME}{\"${escaped}\", ${bytes}};\n"
  "}  // namespace churnlab::dashboard_assets\n")
file(COPY_FILE "${OUT}.tmp" "${OUT}" ONLY_IF_DIFFERENT)
file(REMOVE "${OUT}.tmp")
