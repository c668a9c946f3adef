# bp_add_plugin(<name> SOURCES <src...> [LIBS <targets...>] [INCLUDES <dirs...>])
#
# Builds one plugin as its own MODULE library `bp-<name>.so` in the build
# tree's plugin directory (mirroring the install layout) and installs it.
# Only the entry symbol `bp_entry` is exported (version script).
function(bp_add_plugin name)
  cmake_parse_arguments(P "" "" "SOURCES;LIBS;INCLUDES" ${ARGN})
  set(target bp_plugin_${name})
  add_library(${target} MODULE ${P_SOURCES})
  set_target_properties(${target} PROPERTIES
    PREFIX "" OUTPUT_NAME "bp-${name}"
    LIBRARY_OUTPUT_DIRECTORY ${BP_PLUGIN_BUILD_DIR}
    C_VISIBILITY_PRESET hidden CXX_VISIBILITY_PRESET hidden
    INSTALL_RPATH "$ORIGIN/${BP_LIB_FROM_PLUGIN}"
    BUILD_RPATH "${CMAKE_BINARY_DIR}/${CMAKE_INSTALL_LIBDIR}")
  target_link_libraries(${target} PRIVATE batpipe ${P_LIBS})
  if(P_INCLUDES)
    target_include_directories(${target} PRIVATE ${P_INCLUDES})
  endif()
  target_link_options(${target} PRIVATE
    "-Wl,--version-script=${PROJECT_SOURCE_DIR}/cmake/plugin.map" "-Wl,--no-undefined")
  install(TARGETS ${target} LIBRARY DESTINATION ${BP_PLUGIN_INSTALL_DIR})
endfunction()
