# goro_text.cmake — run before goro's objects are archived or linked (a
# PRE_LINK step, CMakeLists.txt): every text section of every object goes
# into one section, goro_text. The linker keeps that section in one piece
# and defines __start_goro_text/__stop_goro_text around it, which is how
# the preemption signal's handler (src/runtime/preempt.cpp) knows a pc is
# the runtime's, never to be preempted asynchronously.
# Arguments (-D): OBJCOPY, READELF, OBJECTS (a ;-list). Renaming is
# idempotent: an object already done has no .text left.
cmake_minimum_required(VERSION 3.25)
foreach(obj IN LISTS OBJECTS)
  execute_process(COMMAND "${READELF}" -SW "${obj}" OUTPUT_VARIABLE sections RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "goro_text: ${READELF} -SW ${obj} failed")
  endif()
  # (No brackets in the matches: CMake lists do not split inside them.)
  string(REGEX MATCHALL " \\.text(\\.[^ ]*)? +PROGBITS" names "${sections}")
  set(args "")
  set(seen "")
  foreach(n IN LISTS names)
    string(REGEX REPLACE "^ ([^ ]*) +PROGBITS$" "\\1" n "${n}")
    if(NOT n IN_LIST seen)
      list(APPEND seen "${n}")
      list(APPEND args --rename-section "${n}=goro_text")
    endif()
  endforeach()
  if(args)
    execute_process(COMMAND "${OBJCOPY}" ${args} "${obj}" RESULT_VARIABLE rc ERROR_VARIABLE err)
    if(NOT rc EQUAL 0)
      message(FATAL_ERROR "goro_text: ${OBJCOPY} could not rename the text sections of ${obj}: ${err}")
    endif()
  endif()
endforeach()
