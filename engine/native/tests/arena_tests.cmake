# The model tests once more with STRATA_ARENA_POISON=1: tensors the arena leaves to their first
# writer start as NaN, so any op that reads such a tensor before writing all of it fails a test.
# Included by engine/native/CMakeLists.txt (tests/*.cmake) after the model tests exist.
foreach(poisoned model_test train_test generate_test)
  if(TARGET ${poisoned})
    add_test(NAME model_${poisoned}_poison COMMAND ${poisoned})
    set_tests_properties(model_${poisoned}_poison PROPERTIES ENVIRONMENT "OMP_NUM_THREADS=1;STRATA_ARENA_POISON=1"
                         TIMEOUT 300)
  endif()
endforeach()
