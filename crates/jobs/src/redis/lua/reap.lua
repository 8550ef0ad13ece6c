-- reap_expired: gives back every expired lease (in chunks of 10 000 per call).
return {EV, reap(10000)}
