#include "r_api.h"

#include "core/process.h"
#include "core/termination.h"
#include "list_view.h"
#include "mapping.h"
#include "r_boundary.h"
#include "view.h"

extern "C" {
SEXP shmr_share(SEXP, SEXP, SEXP);
SEXP shmr_map(SEXP);
SEXP shmr_is_shared(SEXP);
SEXP shmr_writable_part(SEXP);
SEXP shmr_same_writable_part(SEXP, SEXP);
SEXP shmr_name(SEXP);
SEXP shmr_info(SEXP);
SEXP shmr_unavailable(SEXP);
SEXP shmr_backing(SEXP);
SEXP shmr_close(SEXP);
SEXP shmr_fetch(SEXP, SEXP, SEXP);
SEXP shmr_fetch_reach(SEXP);
SEXP shmr_fetch_first(SEXP);
SEXP shmr_regions();
SEXP shmr_regions_named(SEXP);
SEXP shmr_region_file_present(SEXP);
SEXP shmr_prune();
SEXP shmr_prune_creator(SEXP);
SEXP shmr_prune_remote_copies();
SEXP shmr_release_all();
SEXP shmr_remove_untaken();
SEXP shmr_contains_altrep(SEXP);
SEXP shmr_remove(SEXP);
SEXP shmr_shm_directory();
SEXP shmr_segment_create(SEXP, SEXP);
SEXP shmr_segment_open(SEXP, SEXP);
SEXP shmr_segment_write(SEXP, SEXP, SEXP);
SEXP shmr_segment_read(SEXP, SEXP, SEXP);
SEXP shmr_segment_protect(SEXP);
SEXP shmr_segment_info(SEXP);
SEXP shmr_segment_close(SEXP, SEXP);
SEXP shmr_share_handoff(SEXP, SEXP, SEXP);
SEXP shmr_adopt(SEXP);
SEXP shmr_hand_off(SEXP, SEXP, SEXP, SEXP);
SEXP shmr_process_identity();
SEXP shmr_discard_handoffs(SEXP);
SEXP shmr_buffer_create(SEXP, SEXP, SEXP, SEXP);
SEXP shmr_buffer_write(SEXP, SEXP, SEXP);
SEXP shmr_slice(SEXP, SEXP, SEXP);
SEXP shmr_address(SEXP);
SEXP shmr_data_bytes(SEXP);
SEXP shmr_stored_attributes(SEXP);
SEXP shmr_rebuild(SEXP, SEXP, SEXP, SEXP, SEXP);
SEXP shmr_binding_kinds(SEXP, SEXP);
SEXP shmr_copy_binding(SEXP, SEXP, SEXP);
SEXP shmr_is_closed_view(SEXP);
SEXP shmr_unmap(SEXP);
SEXP shmr_detach(SEXP);
SEXP shmr_advise(SEXP, SEXP);
SEXP shmr_segment_advise(SEXP, SEXP);
SEXP shmr_process_memory(SEXP);
SEXP shmr_physical_memory();
SEXP shmr_free_descriptors();
SEXP shmr_close_inherited_sockets();
SEXP shmr_region_bytes_mapped(SEXP);
SEXP shmr_process_running(SEXP, SEXP);
SEXP shmr_processes_mentioning(SEXP);
SEXP shmr_results_over(SEXP, SEXP);
SEXP shmr_set_reply_recipient(SEXP);
SEXP shmr_unreadable_results(SEXP);
SEXP shmr_regions_read_by(SEXP, SEXP);
SEXP shmr_mapping_stats();

SEXP shmr_host_identity();
SEXP shmr_remote_scope(SEXP);
SEXP shmr_remote_peer(SEXP);
SEXP shmr_remove_superseded_copy(SEXP, SEXP, SEXP, SEXP, SEXP);
SEXP shmr_region_identity(SEXP);
SEXP shmr_parse_origin(SEXP);
SEXP shmr_format_origin(SEXP, SEXP, SEXP, SEXP, SEXP, SEXP, SEXP, SEXP);
SEXP shmr_random_token();
SEXP shmr_sha256(SEXP);
SEXP shmr_process_start();
SEXP shmr_fetch_lock(SEXP);
SEXP shmr_fetch_unlock(SEXP);
SEXP shmr_local_copy(SEXP, SEXP, SEXP, SEXP, SEXP);
SEXP shmr_replica_begin(SEXP, SEXP, SEXP, SEXP, SEXP, SEXP, SEXP);
SEXP shmr_replica_write(SEXP, SEXP, SEXP, SEXP);
SEXP shmr_replica_publish(SEXP, SEXP);
SEXP shmr_replica_abort(SEXP);
SEXP shmr_release_replicas(SEXP);
SEXP shmr_serve_open(SEXP);
SEXP shmr_serve_chunk(SEXP, SEXP, SEXP, SEXP);
SEXP shmr_serve_close(SEXP);
SEXP shmr_serve_gone(SEXP);

static const R_CallMethodDef call_methods[] = {
    SHMR_CALL_METHOD(shmr_share, 3),
    SHMR_CALL_METHOD(shmr_map, 1),
    SHMR_CALL_METHOD(shmr_is_shared, 1),
    SHMR_CALL_METHOD(shmr_writable_part, 1),
    SHMR_CALL_METHOD(shmr_same_writable_part, 2),
    SHMR_CALL_METHOD(shmr_name, 1),
    SHMR_CALL_METHOD(shmr_info, 1),
    SHMR_CALL_METHOD(shmr_unavailable, 1),
    SHMR_CALL_METHOD(shmr_backing, 1),
    SHMR_CALL_METHOD(shmr_close, 1),
    SHMR_CALL_METHOD(shmr_fetch, 3),
    SHMR_CALL_METHOD(shmr_fetch_reach, 1),
    SHMR_CALL_METHOD(shmr_fetch_first, 1),
    SHMR_CALL_METHOD(shmr_regions, 0),
    SHMR_CALL_METHOD(shmr_regions_named, 1),
    SHMR_CALL_METHOD(shmr_region_file_present, 1),
    SHMR_CALL_METHOD(shmr_prune, 0),
    SHMR_CALL_METHOD(shmr_prune_creator, 1),
    SHMR_CALL_METHOD(shmr_prune_remote_copies, 0),
    SHMR_CALL_METHOD(shmr_release_all, 0),
    SHMR_CALL_METHOD(shmr_remove_untaken, 0),
    SHMR_CALL_METHOD(shmr_contains_altrep, 1),
    SHMR_CALL_METHOD(shmr_remove, 1),
    SHMR_CALL_METHOD(shmr_shm_directory, 0),
    SHMR_CALL_METHOD(shmr_segment_create, 2),
    SHMR_CALL_METHOD(shmr_segment_open, 2),
    SHMR_CALL_METHOD(shmr_segment_write, 3),
    SHMR_CALL_METHOD(shmr_segment_read, 3),
    SHMR_CALL_METHOD(shmr_segment_protect, 1),
    SHMR_CALL_METHOD(shmr_segment_info, 1),
    SHMR_CALL_METHOD(shmr_segment_close, 2),
    SHMR_CALL_METHOD(shmr_share_handoff, 3),
    SHMR_CALL_METHOD(shmr_adopt, 1),
    SHMR_CALL_METHOD(shmr_hand_off, 4),
    SHMR_CALL_METHOD(shmr_process_identity, 0),
    SHMR_CALL_METHOD(shmr_discard_handoffs, 1),
    SHMR_CALL_METHOD(shmr_buffer_create, 4),
    SHMR_CALL_METHOD(shmr_buffer_write, 3),
    SHMR_CALL_METHOD(shmr_slice, 3),
    SHMR_CALL_METHOD(shmr_address, 1),
    SHMR_CALL_METHOD(shmr_data_bytes, 1),
    SHMR_CALL_METHOD(shmr_stored_attributes, 1),
    SHMR_CALL_METHOD(shmr_rebuild, 5),
    SHMR_CALL_METHOD(shmr_binding_kinds, 2),
    SHMR_CALL_METHOD(shmr_copy_binding, 3),
    SHMR_CALL_METHOD(shmr_is_closed_view, 1),
    SHMR_CALL_METHOD(shmr_unmap, 1),
    SHMR_CALL_METHOD(shmr_detach, 1),
    SHMR_CALL_METHOD(shmr_advise, 2),
    SHMR_CALL_METHOD(shmr_segment_advise, 2),
    SHMR_CALL_METHOD(shmr_process_memory, 1),
    SHMR_CALL_METHOD(shmr_physical_memory, 0),
    SHMR_CALL_METHOD(shmr_free_descriptors, 0),
    SHMR_CALL_METHOD(shmr_close_inherited_sockets, 0),
    SHMR_CALL_METHOD(shmr_region_bytes_mapped, 1),
    SHMR_CALL_METHOD(shmr_process_running, 2),
    SHMR_CALL_METHOD(shmr_processes_mentioning, 1),
    SHMR_CALL_METHOD(shmr_results_over, 2),
    SHMR_CALL_METHOD(shmr_set_reply_recipient, 1),
    SHMR_CALL_METHOD(shmr_unreadable_results, 1),
    SHMR_CALL_METHOD(shmr_regions_read_by, 2),
    SHMR_CALL_METHOD(shmr_mapping_stats, 0),
    SHMR_CALL_METHOD(shmr_host_identity, 0),
    SHMR_CALL_METHOD(shmr_remote_scope, 1),
    SHMR_CALL_METHOD(shmr_remote_peer, 1),
    SHMR_CALL_METHOD(shmr_remove_superseded_copy, 5),
    SHMR_CALL_METHOD(shmr_region_identity, 1),
    SHMR_CALL_METHOD(shmr_parse_origin, 1),
    SHMR_CALL_METHOD(shmr_format_origin, 8),
    SHMR_CALL_METHOD(shmr_random_token, 0),
    SHMR_CALL_METHOD(shmr_sha256, 1),
    SHMR_CALL_METHOD(shmr_process_start, 0),
    SHMR_CALL_METHOD(shmr_fetch_lock, 1),
    SHMR_CALL_METHOD(shmr_fetch_unlock, 1),
    SHMR_CALL_METHOD(shmr_local_copy, 5),
    SHMR_CALL_METHOD(shmr_replica_begin, 7),
    SHMR_CALL_METHOD(shmr_replica_write, 4),
    SHMR_CALL_METHOD(shmr_replica_publish, 2),
    SHMR_CALL_METHOD(shmr_replica_abort, 1),
    SHMR_CALL_METHOD(shmr_release_replicas, 1),
    SHMR_CALL_METHOD(shmr_serve_open, 1),
    SHMR_CALL_METHOD(shmr_serve_chunk, 4),
    SHMR_CALL_METHOD(shmr_serve_close, 1),
    SHMR_CALL_METHOD(shmr_serve_gone, 1),
    {NULL, NULL, 0}};

void R_init_shmr(DllInfo* dll) {
  R_registerRoutines(dll, NULL, call_methods, NULL, NULL);
  R_useDynamicSymbols(dll, FALSE);
  // A forked child tells itself from its parent by this first identity.
  shmr::process::current();
  // R runs no exit code on SIGTERM, SIGHUP, SIGQUIT or SIGABRT: the regions this
  // process owns are removed before such a signal ends it.
  shmr::termination::install_handlers();
  R_forceSymbols(dll, TRUE);
  // cpp11's preserve list is made on first use, in a function-local static:
  // made here, no interrupt in a later call can leave it half made.
  cpp11::detail::store::get();
  shmr::glue::init_vector_view_classes(dll);
  shmr::glue::init_string_view_class(dll);
  shmr::glue::init_list_view_class(dll);
  shmr::glue::watch_idle_mappings();
}
}
