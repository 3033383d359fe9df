# systemd/install.cmake - what `cmake --install` (make install) puts where, and
# the Debian package built from the same rules (make deb). Included at the
# end of the top-level CMakeLists.txt, after every target exists.
#
#   sbin/spectator-relay                 the daemon: run by the system (man section 8)
#   bin/spectator-relayctl               the admin client: run by people (section 1)
#   /etc/spectator-relay/relay.ini       the commented sample; never overwritten
#   lib/systemd/system/spectator-relay.{service,socket}
#   share/man/man8/spectator-relay.8.gz, share/man/man1/spectator-relayctl.1.gz
#   share/doc/spectator-relay/           README.md, operations.md, examples/relay.ini
#
# Paths without a leading / are below the prefix: /usr/local for
# `make install`, /usr in the package. The configuration is the exception:
# the binary reads /etc/spectator-relay/relay.ini whatever the prefix
# (CONFIG_DEFAULT_PATH in src/config.h), and the service unit names it.
include(GNUInstallDirs)

set(RELAY_CONFDIR /etc/spectator-relay)
set(RELAY_UNITDIR lib/systemd/system CACHE STRING
    "where the systemd units go: below the prefix, or an absolute path")

# ------------------------------------------------------------------------
# Files
# ------------------------------------------------------------------------

install(TARGETS spectator-relay RUNTIME DESTINATION ${CMAKE_INSTALL_SBINDIR})
if(TARGET spectator-relayctl)
  install(TARGETS spectator-relayctl RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
endif()

# Man pages, compressed as Debian expects; -n keeps the output the same from
# one build to the next.
find_program(GZIP_EXECUTABLE gzip REQUIRED)
set(relay_manpages spectator-relay.8)
if(TARGET spectator-relayctl)
  list(APPEND relay_manpages spectator-relayctl.1)
endif()
set(relay_manpages_gz)
foreach(page IN LISTS relay_manpages)
  set(gz ${PROJECT_BINARY_DIR}/man/${page}.gz)
  add_custom_command(OUTPUT ${gz}
    COMMAND ${CMAKE_COMMAND} -E copy ${PROJECT_SOURCE_DIR}/docs/${page} ${PROJECT_BINARY_DIR}/man/${page}
    COMMAND ${GZIP_EXECUTABLE} -9nf ${PROJECT_BINARY_DIR}/man/${page}
    DEPENDS ${PROJECT_SOURCE_DIR}/docs/${page}
    COMMENT "Compressing the man page ${page}" VERBATIM)
  string(REGEX REPLACE ".*\\." "" section ${page})
  install(FILES ${gz} DESTINATION ${CMAKE_INSTALL_MANDIR}/man${section})
  list(APPEND relay_manpages_gz ${gz})
endforeach()
add_custom_target(manpages ALL DEPENDS ${relay_manpages_gz})

# relay.ini and the man pages refer to configuration.md and admin.md.
install(FILES README.md docs/operations.md docs/configuration.md docs/admin.md
  DESTINATION ${CMAKE_INSTALL_DOCDIR})
install(FILES conf/relay.ini DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples)

# The configuration: installed when absent, never over a file an operator
# may have edited (the package instead marks it a conffile, and dpkg asks).
install(CODE "
  set(relay_conf \"\$ENV{DESTDIR}${RELAY_CONFDIR}/relay.ini\")
  if(EXISTS \"\${relay_conf}\")
    message(STATUS \"Keeping: \${relay_conf} (the sample is in the doc directory)\")
  else()
    file(INSTALL DESTINATION \"${RELAY_CONFDIR}\" TYPE FILE
         PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ
         FILES \"${PROJECT_SOURCE_DIR}/conf/relay.ini\")
  endif()
")

# The units. The service names the binary by its installed path, and that
# depends on the prefix given at install time (--prefix, or /usr when CPack
# builds the package), so it is written then, not when CMake configures.
install(CODE "
  set(relay_sbindir \"${CMAKE_INSTALL_SBINDIR}\")
  if(NOT IS_ABSOLUTE \"\${relay_sbindir}\")
    set(relay_sbindir \"\${CMAKE_INSTALL_PREFIX}/\${relay_sbindir}\")
  endif()
  set(relay_unitdir \"${RELAY_UNITDIR}\")
  if(NOT IS_ABSOLUTE \"\${relay_unitdir}\")
    set(relay_unitdir \"\${CMAKE_INSTALL_PREFIX}/\${relay_unitdir}\")
  endif()
  file(READ \"${PROJECT_SOURCE_DIR}/systemd/spectator-relay.service.in\" relay_unit)
  string(REPLACE \"@SBINDIR@\" \"\${relay_sbindir}\" relay_unit \"\${relay_unit}\")
  file(WRITE \"${PROJECT_BINARY_DIR}/systemd/spectator-relay.service\" \"\${relay_unit}\")
  file(INSTALL DESTINATION \"\${relay_unitdir}\" TYPE FILE
       FILES \"${PROJECT_BINARY_DIR}/systemd/spectator-relay.service\"
             \"${PROJECT_SOURCE_DIR}/systemd/spectator-relay.socket\")
")

# ------------------------------------------------------------------------
# The Debian package: `make deb`, or cpack -G DEB in the build directory
# ------------------------------------------------------------------------

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME spectator-relay)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "spectator-relay maintainers <spectator-relay@localhost>" CACHE STRING
    "Maintainer: field of the Debian package")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
    "aggregating relay in front of Netflix SpectatorD")
set(CPACK_PACKAGE_DESCRIPTION
    "spectator-relay receives SpectatorD protocol lines over UDP and a unix
datagram socket, validates them, merges what can be merged over a short
window, and forwards compact datagrams to SpectatorD's unix socket, so that
SpectatorD publishes what it would have published without the relay, minus
the packet drops. Comes with systemd units for socket activation.")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
# Debian ships binaries stripped.
set(CPACK_STRIP_FILES ON)

set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)   # spectator-relay_VERSION-1_ARCH.deb
set(CPACK_DEBIAN_PACKAGE_RELEASE 1)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
# dpkg-shlibdeps (dpkg-dev, and `file` for CPack) works out Depends: from the
# libraries the binaries link: libc6, libuv1, libinih1, libsystemd0. (xxHash
# is compiled in from its header, XXH_INLINE_ALL: no libxxhash0.) CPack adds
# them to the one dependency it cannot see: adduser, which postinst runs to
# create the relay's system user.
set(CPACK_DEBIAN_PACKAGE_DEPENDS adduser)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# conffiles keeps an edited relay.ini across upgrades (dpkg asks before
# replacing it) and removes it only on purge; the scripts create the system
# user, reload systemd and stop, restart or disable the units. Each says why
# in its header.
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${PROJECT_SOURCE_DIR}/systemd/deb/conffiles
    ${PROJECT_SOURCE_DIR}/systemd/deb/postinst
    ${PROJECT_SOURCE_DIR}/systemd/deb/prerm
    ${PROJECT_SOURCE_DIR}/systemd/deb/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)

include(CPack)
