#pragma once
/* Pieces shared by the ttrpc server and client: buffered frame reading and whole writes. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "cc/ttrpc.h"
#include "ttrpc/ttrpc.pb-c.h"

/*
 * A buffered reader of frames on one fd. Frames are returned in place (valid until the next
 * call) so that a burst of small frames costs one read(2). A frame larger than the buffer grows
 * it up to CC_TTRPC_MAX_DATA + header; the buffer shrinks back once the frame is consumed.
 */
struct frame_reader {
        int fd;
        int wake_fd; /* eventfd that interrupts a blocking wait, or -1 */
        /* A socket blocks in read(2) directly when there is no deadline (one syscall instead of
         * poll + read); its owner wakes it with shutdown(2). Other fds (a virtio-serial port)
         * always wait in poll(2) so that wake_fd can interrupt them. */
        bool is_socket;
        uint8_t *buf;
        size_t cap, start, end;
};

int frame_reader_init(struct frame_reader *r, int fd, bool is_socket, int wake_fd);
/* True when a whole frame is already buffered (the next frame_read will not block). */
bool frame_reader_has_frame(const struct frame_reader *r);
void frame_reader_done(struct frame_reader *r);

/*
 * Reads the next frame. Returns 0 with *h and *data (NULL when h->length is 0) set;
 * -EAGAIN when the deadline (CLOCK_MONOTONIC ns, 0 = none) passed first (partial bytes kept);
 * -ECANCELED when wake_fd became readable; -ECONNRESET on EOF between frames;
 * -EPROTO on EOF inside a frame (truncated); -EMSGSIZE when the header announces more than
 * CC_TTRPC_MAX_DATA (the header is still returned in *h); other -errno from read/poll.
 */
int frame_read(struct frame_reader *r, struct cc_ttrpc_header *h, const uint8_t **data,
               int64_t deadline_ns);

/* Writes all of buf (send with MSG_NOSIGNAL on sockets, write otherwise). */
int write_full(int fd, bool is_socket, const void *buf, size_t len);

int64_t ttrpc_now_ns(void);

/* Builds one frame: header + packed message (or raw bytes). *ret is malloc'ed. */
int frame_build_message(uint32_t stream_id, uint8_t type, const ProtobufCMessage *msg,
                        uint8_t **ret, size_t *ret_len);
