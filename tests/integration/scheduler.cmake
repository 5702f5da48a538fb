# Integration tests of the sync scheduler's in-process runner (real threads, real temp trees).
chorus_test(scheduler_runner_test LABEL integration SOURCES scheduler_runner_test.cc
            LIBS chorus::broker_scheduler)
target_include_directories(scheduler_runner_test PRIVATE ${PROJECT_SOURCE_DIR}/tests/unit)
