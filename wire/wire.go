package wire

import "time"

// PackageID names one version of a package.
type PackageID struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}

// String is name-version.
func (p PackageID) String() string { return p.Name + "-" + p.Version }

// UpdateStatus is the state of one vehicle's update.
type UpdateStatus string

// The states of an update: pending → inFlight → finished or failed; pending → canceled or failed
// (expired); inFlight → canceled (by the device).
const (
	Pending  UpdateStatus = "pending"
	InFlight UpdateStatus = "inFlight"
	Finished UpdateStatus = "finished"
	Failed   UpdateStatus = "failed"
	Canceled UpdateStatus = "canceled"
)

// Active tells whether an update in this status is still to be delivered (pending or in flight).
func (st UpdateStatus) Active() bool { return st == Pending || st == InFlight }

// PollRow is one row of a device's poll (GET /vehicle_updates/:vin): a pending or in-flight update in
// delivery order.
type PollRow struct {
	UpdateID   string       `json:"updateId"`
	RequestID  string       `json:"requestId"`
	PackageID  *PackageID   `json:"packageId"`
	InstallPos int          `json:"installPos"` // 0-based position in delivery order
	Status     UpdateStatus `json:"status"`
	CreatedAt  time.Time    `json:"createdAt"`
}

// UpdateAvailable is UPDATE_NOTIFICATION's SOFTWARE_UPDATE_AVAILABLE.
type UpdateAvailable struct {
	UpdateID            string      `json:"updateId"`
	Packages            []PackageID `json:"packages"`
	Size                int64       `json:"size"`
	DownloadIndex       string      `json:"downloadIndex"`
	Description         string      `json:"description"`
	RequestConfirmation bool        `json:"requestConfirmation"`
}

// GetAllPackages asks the device for its installed packages (answered with PUT .../installed, a list
// of PackageID).
type GetAllPackages struct {
	ID string `json:"id"`
}

// Notification is what the device should do next (GET .../notification): one of the two fields is set.
type Notification struct {
	UpdateAvailable *UpdateAvailable `json:"updateAvailable,omitempty"`
	GetAllPackages  *GetAllPackages  `json:"getAllPackages,omitempty"`
}

// TransferPart is one package of a transfer payload.
type TransferPart struct {
	ID     PackageID `json:"id"`
	Size   int64     `json:"size"`
	SHA256 string    `json:"sha256"`
}

// Transfer describes an update's payload as TRANSFER_START (POST .../:updateId/start) announces it:
// the packages concatenated in install order, cut into ChunksCount chunks of ChunkSize bytes.
type Transfer struct {
	UpdateID    string         `json:"updateId"`
	ChunkSize   int            `json:"chunkSize"`
	ChunksCount int            `json:"chunksCount"`
	Size        int64          `json:"size"`
	SHA256      string         `json:"sha256"`
	Packages    []TransferPart `json:"packages"`
}

// Chunk is one chunk of a payload (GET .../:updateId/chunk and .../chunk/:index).
type Chunk struct {
	Index  int    `json:"index"` // 1-based
	Data   []byte `json:"data"`  // base64 in JSON
	SHA256 string `json:"sha256"`
}

// Ack is the body of POST .../:updateId/ack: the chunks received.
type Ack struct {
	Chunks []int `json:"chunks"`
}

// AckAnswer is the answer to an Ack: the lowest chunk still unacknowledged, null when none is.
type AckAnswer struct {
	Next *int `json:"next"`
}

// Finalize is the body of POST .../:updateId/finalize (TRANSFER_COMPLETE): the number of chunks
// received (required) and the sha256 of the assembled payload.
type Finalize struct {
	Chunks *int   `json:"chunks"`
	SHA256 string `json:"sha256"`
}

// InstallReport is the body of POST .../:updateId (INSTALL_REPORT).
type InstallReport struct {
	OperationResults []OperationResult `json:"operation_results"`
}

// OperationResult is one entry of an install report.
type OperationResult struct {
	ID         string `json:"id"`
	ResultCode int    `json:"result_code"`
	ResultText string `json:"result_text"`
}

// Result codes of the original client's install reports (UpdateResultCode). OK and AlreadyProcessed
// are success; every other code fails the update.
const (
	ResultOK                    = 0
	ResultAlreadyProcessed      = 1
	ResultDependencyFailure     = 2
	ResultValidationFailed      = 3
	ResultInstallFailed         = 4
	ResultUpgradeFailed         = 5
	ResultRemovalFailed         = 6
	ResultFlashFailed           = 7
	ResultCreatePartitionFailed = 8
	ResultDeletePartitionFailed = 9
	ResultResizePartitionFailed = 10
	ResultWritePartitionFailed  = 11
	ResultPatchPartitionFailed  = 12
	ResultUserDeclined          = 13
	ResultSoftwareBlacklisted   = 14
	ResultDiskFull              = 15
	ResultNotFound              = 16
	ResultOldVersion            = 17
	ResultInternalError         = 18
	ResultGeneralError          = 19
)

// ResultNames are the original client's names of the result codes, by code.
var ResultNames = []string{"OK", "ALREADY_PROCESSED", "DEPENDENCY_FAILURE", "VALIDATION_FAILED", "INSTALL_FAILED",
	"UPGRADE_FAILED", "REMOVAL_FAILED", "FLASH_FAILED", "CREATE_PARTITION_FAILED", "DELETE_PARTITION_FAILED",
	"RESIZE_PARTITION_FAILED", "WRITE_PARTITION_FAILED", "PATCH_PARTITION_FAILED", "USER_DECLINED",
	"SOFTWARE_BLACKLISTED", "DISK_FULL", "NOT_FOUND", "OLD_VERSION", "INTERNAL_ERROR", "GENERAL_ERROR"}

// ResultSuccess tells whether a result code reports success.
func ResultSuccess(code int) bool { return code == ResultOK || code == ResultAlreadyProcessed }

// DirectorCustom is the custom field of each target in the director's TUF targets metadata for one
// vehicle: the vehicle, the update, and the target's place in install order (0-based).
type DirectorCustom struct {
	VIN          string `json:"vin"`
	UpdateID     string `json:"updateId"`
	InstallOrder *int   `json:"installOrder"`
}
