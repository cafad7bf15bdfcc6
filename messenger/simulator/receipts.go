package simulator

// wireDelivery is Meta's delivery receipt: every message sent before the
// watermark reached the customer's device.
type wireDelivery struct {
	Watermark int64 `json:"watermark"`
}

// CustomerReceives simulates the customer's device receiving the
// conversation: a delivery receipt with watermark = now goes to the owner
// (messaging) and the other apps (standby), like CustomerReads.
func (s *Sim) CustomerReceives(pageID, psid string) error {
	return s.customerEvent(pageID, psid, false, func(ev *wireEvent, standby bool) {
		ev.Delivery = &wireDelivery{Watermark: ev.Timestamp}
	})
}
