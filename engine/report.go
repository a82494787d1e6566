package engine

// INSTALL_REPORT: the device's installation result, with the result codes of the original SOTA client.

import (
	"strings"

	"sota/errs"
	"sota/resolver"
	"sota/wire"
)

// OperationResult is one entry of an install report; its result codes are wire.Result*.
type OperationResult = wire.OperationResult

// MaxOperationResults bounds the entries of one report.
const MaxOperationResults = 1000

const maxResultText = 4096

// InstallReport is INSTALL_REPORT. When every result code is a success (0 or 1) the update is finished
// and its install list joins the vehicle's installed set (VIN_ADD_PACKAGE), in one transaction;
// otherwise it is failed with the first failing code, the result text being the progress log the
// device left while in flight (MarkInFlight), if any, followed by the report's texts. An update reported before its transfer started
// moves through in flight. It returns "<name>-<version> success" or "<name>-<version> failed".
// 404 missing_update; 409 already_reported ("<name>-<version> failed: …") when the update is already
// finished or failed, 409 update_canceled when it was canceled; 400 for an empty report or a code outside 0-19.
func (s *Service) InstallReport(vin, id string, results []OperationResult) (Update, string, error) {
	if len(results) == 0 {
		return Update{}, "", errs.InvalidEntity("operation_results must not be empty")
	}
	if len(results) > MaxOperationResults {
		return Update{}, "", errTooMany("operation_results", MaxOperationResults)
	}
	code, texts := wire.ResultOK, make([]string, 0, len(results))
	for _, r := range results {
		if r.ResultCode < 0 || r.ResultCode >= len(wire.ResultNames) {
			return Update{}, "", errs.InvalidEntity("result_code must be 0 to %d, not %d", len(wire.ResultNames)-1, r.ResultCode)
		}
		if len(r.ResultText) > maxResultText || len(r.ID) > maxResultText {
			return Update{}, "", errs.InvalidEntity("id and result_text are at most %d bytes", maxResultText)
		}
		if !wire.ResultSuccess(r.ResultCode) && wire.ResultSuccess(code) {
			code = r.ResultCode
		}
		if wire.ResultSuccess(code) && r.ResultCode == wire.ResultAlreadyProcessed {
			code = wire.ResultAlreadyProcessed
		}
		if r.ResultText != "" {
			texts = append(texts, r.ResultText)
		}
	}
	text := strings.Join(texts, "; ")
	if len(text) > maxResultText {
		text = text[:maxResultText]
	}
	var out Update
	var msg string
	err := s.resUpdate(func(t *engineTx, x *resolver.Tx) error {
		rec, u, err := s.deviceUpdate(t, vin, id)
		if err != nil {
			return err
		}
		name := updateName(u)
		if u.Status == Canceled {
			return errUpdateCanceled(u)
		}
		if !u.Status.Active() {
			return errs.New(errs.Conflict, "already_reported", "%s failed: the update is already %s", name, u.Status)
		}
		now := s.now()
		if !wire.ResultSuccess(code) {
			c := code
			failure := text
			if rec.Status == InFlight && rec.ResultText != "" { // what the device logged while in flight
				failure = rec.ResultText
				if text != "" {
					failure = appendLog(failure, text)
				}
			}
			if err := s.transition(t, vin, id, rec, Failed, &c, resultText(code, failure), now); err != nil {
				return err
			}
			if err := s.campaignReported(t, vin, &u, &c); err != nil {
				return err
			}
			out, msg = s.view(t, vin, id, rec), name+" failed"
			return nil
		}
		if rec.Status == Pending {
			if err := s.transition(t, vin, id, rec, InFlight, nil, "", now); err != nil {
				return err
			}
		}
		c := code
		if err := s.transition(t, vin, id, rec, Finished, &c, resultText(code, text), now); err != nil {
			return err
		}
		if err := s.campaignReported(t, vin, &u, nil); err != nil {
			return err
		}
		if u.Kind == KindInstall {
			if err := x.ApplyInstalled(vin, u.Install); err != nil {
				return err
			}
		}
		out, msg = s.view(t, vin, id, rec), name+" success"
		return nil
	})
	return out, msg, err
}

func resultText(code int, text string) string {
	if text == "" {
		return wire.ResultNames[code]
	}
	return wire.ResultNames[code] + ": " + text
}
