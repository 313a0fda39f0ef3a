package objectlock

import (
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	. "github.com/onsi/gomega"
)

// Covers how a bucket's default retention is turned into a Duration: days
// and years of 365 days, and a retention longer than a Duration holds taken
// as the longest Duration rather than wrapping around.
func TestRetentionPeriod(t *testing.T) {
	day := 24 * time.Hour
	for _, tc := range []struct {
		validity uint
		unit     minio.ValidityUnit
		want     time.Duration
	}{
		{1, minio.Days, day},
		{2190, minio.Days, 2190 * day},
		{1, minio.Years, 365 * day},
		{6, minio.Years, 6 * 365 * day},
		{292, minio.Years, 292 * 365 * day},
		{293, minio.Years, math.MaxInt64},
		{math.MaxUint, minio.Years, math.MaxInt64},
		{106751, minio.Days, 106751 * day},
		{106752, minio.Days, math.MaxInt64},
		{math.MaxUint, minio.Days, math.MaxInt64},
	} {
		t.Run(fmt.Sprintf("%d %s", tc.validity, tc.unit), func(t *testing.T) {
			NewWithT(t).Expect(retentionPeriod(tc.validity, tc.unit)).To(Equal(tc.want))
		})
	}
}
