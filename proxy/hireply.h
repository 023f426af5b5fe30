/*
 * hireply: hiredis reply objects built from blocks kept for reuse. The
 * keyspace watch's hiredis reader builds every reply as redisReply objects;
 * an invalidation message names every key Redis saw written, and hiredis's
 * own object functions cost one calloc and one malloc per key (about 1,000
 * instructions per write through bulwark, the largest item of a SET's
 * profile). These functions build the same objects — callbacks read them as
 * before — from one block per object, with strings of up to
 * HIREPLY_INLINE bytes inside the block, and keep freed blocks.
 */
#ifndef BW_HIREPLY_H
#define BW_HIREPLY_H

#include <hiredis/read.h>

/* Longest string kept inside a pooled block, bytes. */
#define HIREPLY_INLINE 96

/* The object functions: reader->fn = &hireply_fns (hiredis never frees fn). */
extern redisReplyObjectFunctions hireply_fns;

/* Free the kept blocks (at shutdown; blocks freed later are freed, not kept). */
void hireply_cache_free_all(void);

#endif
