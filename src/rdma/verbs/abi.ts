// The parts of the libibverbs / librdmacm ABI (rdma-core, x86-64) that the verbs transport
// reads and writes directly. Each entry names a C member path; test/unit/verbs-abi.test.ts
// compiles offsetof/sizeof of every entry against the installed <infiniband/verbs.h> and
// <rdma/rdma_cma.h> and fails on any difference, so nothing here is taken on trust.
//
// ibv_post_send, ibv_poll_cq and ibv_req_notify_cq are static inline in verbs.h and call
// through ibv_context.ops: their slots are listed here and called with koffi.call.

export interface Field {
  offset: number;
  size: number;
}

/** "struct.member.path" → offset and size in bytes. */
export const fields = {
  'ibv_context.ops.poll_cq': { offset: 96, size: 8 },
  'ibv_context.ops.req_notify_cq': { offset: 104, size: 8 },
  'ibv_context.ops.post_send': { offset: 208, size: 8 },
  'ibv_context.async_fd': { offset: 268, size: 4 },
  'ibv_qp.context': { offset: 0, size: 8 },
  'ibv_qp.qp_num': { offset: 52, size: 4 },
  'ibv_cq.context': { offset: 0, size: 8 },
  'ibv_comp_channel.fd': { offset: 8, size: 4 },
  'ibv_mr.addr': { offset: 16, size: 8 },
  'ibv_mr.length': { offset: 24, size: 8 },
  'ibv_mr.lkey': { offset: 36, size: 4 },
  'ibv_mr.rkey': { offset: 40, size: 4 },
  'ibv_sge.addr': { offset: 0, size: 8 },
  'ibv_sge.length': { offset: 8, size: 4 },
  'ibv_sge.lkey': { offset: 12, size: 4 },
  'ibv_send_wr.wr_id': { offset: 0, size: 8 },
  'ibv_send_wr.next': { offset: 8, size: 8 },
  'ibv_send_wr.sg_list': { offset: 16, size: 8 },
  'ibv_send_wr.num_sge': { offset: 24, size: 4 },
  'ibv_send_wr.opcode': { offset: 28, size: 4 },
  'ibv_send_wr.send_flags': { offset: 32, size: 4 },
  'ibv_send_wr.wr.rdma.remote_addr': { offset: 40, size: 8 },
  'ibv_send_wr.wr.rdma.rkey': { offset: 48, size: 4 },
  'ibv_wc.wr_id': { offset: 0, size: 8 },
  'ibv_wc.status': { offset: 8, size: 4 },
  'ibv_wc.opcode': { offset: 12, size: 4 },
  'ibv_wc.vendor_err': { offset: 16, size: 4 },
  'ibv_wc.byte_len': { offset: 20, size: 4 },
  'ibv_qp_init_attr.send_cq': { offset: 8, size: 8 },
  'ibv_qp_init_attr.recv_cq': { offset: 16, size: 8 },
  'ibv_qp_init_attr.cap.max_send_wr': { offset: 32, size: 4 },
  'ibv_qp_init_attr.cap.max_recv_wr': { offset: 36, size: 4 },
  'ibv_qp_init_attr.cap.max_send_sge': { offset: 40, size: 4 },
  'ibv_qp_init_attr.cap.max_recv_sge': { offset: 44, size: 4 },
  'ibv_qp_init_attr.qp_type': { offset: 52, size: 4 },
  'ibv_qp_init_attr.sq_sig_all': { offset: 56, size: 4 },
  'rdma_cm_id.verbs': { offset: 0, size: 8 },
  'rdma_cm_id.qp': { offset: 24, size: 8 },
  'rdma_cm_id.route.addr.src_storage': { offset: 32, size: 128 },
  'rdma_cm_id.route.addr.dst_storage': { offset: 160, size: 128 },
  'rdma_cm_event.id': { offset: 0, size: 8 },
  'rdma_cm_event.listen_id': { offset: 8, size: 8 },
  'rdma_cm_event.event': { offset: 16, size: 4 },
  'rdma_cm_event.status': { offset: 20, size: 4 },
  'rdma_cm_event.param.conn.private_data': { offset: 24, size: 8 },
  'rdma_cm_event.param.conn.private_data_len': { offset: 32, size: 1 },
  'rdma_conn_param.private_data': { offset: 0, size: 8 },
  'rdma_conn_param.private_data_len': { offset: 8, size: 1 },
  'rdma_conn_param.responder_resources': { offset: 9, size: 1 },
  'rdma_conn_param.initiator_depth': { offset: 10, size: 1 },
  'rdma_conn_param.retry_count': { offset: 12, size: 1 },
  'rdma_conn_param.rnr_retry_count': { offset: 13, size: 1 },
  'rdma_event_channel.fd': { offset: 0, size: 4 },
  'sockaddr_in.sin_family': { offset: 0, size: 2 },
  'sockaddr_in.sin_port': { offset: 2, size: 2 },
  'sockaddr_in.sin_addr': { offset: 4, size: 4 },
  'sockaddr_in6.sin6_family': { offset: 0, size: 2 },
  'sockaddr_in6.sin6_port': { offset: 2, size: 2 },
  'sockaddr_in6.sin6_addr': { offset: 8, size: 16 },
} as const satisfies Record<string, Field>;

/** sizeof of the structs the transport allocates or steps through. */
export const sizes = {
  ibv_sge: 16,
  ibv_send_wr: 128,
  ibv_wc: 48,
  ibv_qp_init_attr: 64,
  rdma_conn_param: 24,
  sockaddr_in: 16,
  sockaddr_in6: 28,
} as const;

/** Enumerators and flags, by their C names. */
export const constants = {
  IBV_WR_RDMA_WRITE: 0,
  IBV_WR_RDMA_READ: 4,
  IBV_SEND_SIGNALED: 2,
  IBV_ACCESS_LOCAL_WRITE: 1,
  IBV_ACCESS_REMOTE_WRITE: 2,
  IBV_ACCESS_REMOTE_READ: 4,
  IBV_QPT_RC: 2,
  IBV_WC_SUCCESS: 0,
  IBV_WC_WR_FLUSH_ERR: 5,
  RDMA_PS_TCP: 0x106,
  AF_INET: 2,
  AF_INET6: 10,
  RDMA_CM_EVENT_ADDR_RESOLVED: 0,
  RDMA_CM_EVENT_ADDR_ERROR: 1,
  RDMA_CM_EVENT_ROUTE_RESOLVED: 2,
  RDMA_CM_EVENT_ROUTE_ERROR: 3,
  RDMA_CM_EVENT_CONNECT_REQUEST: 4,
  RDMA_CM_EVENT_CONNECT_RESPONSE: 5,
  RDMA_CM_EVENT_CONNECT_ERROR: 6,
  RDMA_CM_EVENT_UNREACHABLE: 7,
  RDMA_CM_EVENT_REJECTED: 8,
  RDMA_CM_EVENT_ESTABLISHED: 9,
  RDMA_CM_EVENT_DISCONNECTED: 10,
  RDMA_CM_EVENT_DEVICE_REMOVAL: 11,
  RDMA_CM_EVENT_TIMEWAIT_EXIT: 15,
} as const;

export type FieldName = keyof typeof fields;

export const CM_EVENT_NAMES: Record<number, string> = Object.fromEntries(
  Object.entries(constants)
    .filter(([name]) => name.startsWith('RDMA_CM_EVENT_'))
    .map(([name, value]) => [value, name.slice('RDMA_CM_EVENT_'.length)]),
);

/** rdma_cm's "as many as the device allows" for responder resources and initiator depth. */
export const RDMA_MAX_RESP_RES = 0xff;
export const RDMA_MAX_INIT_DEPTH = 0xff;
