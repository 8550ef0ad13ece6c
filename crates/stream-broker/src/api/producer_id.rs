//! `InitProducerId`: a fresh producer id (epoch 0) for an idempotent producer. Transactional
//! ids are refused: transactions (markers, the transaction coordinator, `read_committed`
//! filtering) are not implemented.

use std::sync::Arc;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};

use super::blocking;
use crate::broker::State;

pub(crate) async fn handle(
    state: &Arc<State>,
    req: InitProducerIdRequest,
) -> InitProducerIdResponse {
    let resp = InitProducerIdResponse::default()
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1);
    if req.transactional_id.is_some() {
        return resp.with_error_code(ResponseError::TransactionalIdAuthorizationFailed.code());
    }
    let s = state.clone();
    match blocking(move || s.producer_ids.next()).await {
        Ok(Ok(id)) => resp.with_producer_id(ProducerId(id)).with_producer_epoch(0),
        Ok(Err(e)) => {
            log::error!("allocating a producer id failed: {e}");
            resp.with_error_code(ResponseError::KafkaStorageError.code())
        }
        Err(code) => resp.with_error_code(code.code()),
    }
}
