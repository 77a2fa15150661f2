# embed.cmake - turn the Redis Lua scripts (common/lua/NAME.lua) into C string
# literals at build time, so they live as readable, lintable files and are
# compiled into the store.  A line "-- include: now.lua" (or terminal.lua)
# is replaced by that shared snippet.
#   cmake -DLUA_DIR=... -DOUT=store_lua.h -DSCRIPTS=queued,start,... -P embed.cmake
function(lua_read name out_var)
  # file(READ), not file(STRINGS): a list would split lines at ';'.
  file(READ "${LUA_DIR}/${name}" text)
  foreach(inc IN ITEMS now.lua terminal.lua)
    if(text MATCHES "-- include: ${inc}\n")
      file(READ "${LUA_DIR}/${inc}" inc_text)
      string(REPLACE "-- include: ${inc}\n" "${inc_text}" text "${text}")
    endif()
  endforeach()
  # A marker left over names a snippet this file does not know: stop rather
  # than embed a script whose helper is silently missing.
  # (A marker is a whole line; the snippets mention the marker in comments.)
  if(text MATCHES "(^|\n)-- include: ([^\n]*)")
    message(FATAL_ERROR "${LUA_DIR}/${name}: unknown include '${CMAKE_MATCH_2}' "
                        "(known: now.lua, terminal.lua; add it to embed.cmake)")
  endif()
  set(${out_var} "${text}" PARENT_SCOPE)
endfunction()

string(REPLACE "," ";" SCRIPTS "${SCRIPTS}")
set(h "/* Generated from the files in common/lua/ by common/lua/embed.cmake:\n * do not edit.  Included by store_conn.c only. */\n")
string(APPEND h "#ifndef AAS_STORE_LUA_H\n#define AAS_STORE_LUA_H\n")
foreach(s IN LISTS SCRIPTS)
  lua_read("${s}.lua" body)
  string(REPLACE "\\" "\\\\" body "${body}")
  string(REPLACE "\"" "\\\"" body "${body}")
  string(REPLACE "\n" "\\n\"\n    \"" body "${body}")
  string(APPEND h "\nstatic const char aas_store_lua_${s}[] =\n    \"${body}\";\n")
endforeach()
string(APPEND h "\n#endif\n")
file(WRITE "${OUT}.tmp" "${h}")
execute_process(COMMAND "${CMAKE_COMMAND}" -E copy_if_different "${OUT}.tmp" "${OUT}")
